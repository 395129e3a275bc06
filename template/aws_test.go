package template

import (
	"reflect"
	"testing"

	"github.com/wsgate/wsgate/integration"
)

// TestAWSIntegrations: AWS, HTTP and HTTP_PROXY integrations keep their
// URI, method, credentials, parameters, templates and integration
// responses, one to one, as AWS's SQS WebSocket pattern writes them.
func TestAWSIntegrations(t *testing.T) {
	src := chatBase + `
  R: { Type: AWS::ApiGatewayV2::Route, Properties: { ApiId: !Ref Api, RouteKey: send, RouteResponseSelectionExpression: $default, Target: !Sub "integrations/${Q}" } }
  Q:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Api
      IntegrationType: AWS
      IntegrationMethod: POST
      IntegrationUri: !Sub "arn:aws:apigateway:${AWS::Region}:sqs:path/${AWS::AccountId}/q.fifo"
      CredentialsArn: arn:aws:iam::123456789012:role/apigw
      PassthroughBehavior: NEVER
      RequestParameters: { integration.request.header.Content-Type: "'application/x-www-form-urlencoded'" }
      TemplateSelectionExpression: \$default
      RequestTemplates: { $default: "Action=SendMessage&MessageGroupId=$input.path('$.g')&MessageBody=$util.urlEncode($input.body)" }
  QR: { Type: AWS::ApiGatewayV2::IntegrationResponse, Properties: { ApiId: !Ref Api, IntegrationId: !Ref Q, IntegrationResponseKey: $default } }
  P: { Type: AWS::ApiGatewayV2::Route, Properties: { ApiId: !Ref Api, RouteKey: fwd, Target: !Sub "integrations/${H}" } }
  H:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Api
      IntegrationType: HTTP_PROXY
      IntegrationMethod: PUT
      IntegrationUri: https://backend.example/messages
      RequestParameters: { integration.request.header.X-Conn: context.connectionId }
  G: { Type: AWS::ApiGatewayV2::Route, Properties: { ApiId: !Ref Api, RouteKey: get, Target: !Sub "integrations/${N}" } }
  N: { Type: AWS::ApiGatewayV2::Integration, Properties: { ApiId: !Ref Api, IntegrationType: HTTP, IntegrationMethod: GET, IntegrationUri: https://backend.example/x } }
`
	f, err := Parse([]byte(src), "template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	res, err := Translate(f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]integration.Config{
		"send": {
			Type: "aws", IntegrationMethod: "POST",
			URI:                         "arn:aws:apigateway:us-east-1:sqs:path/000000000000/q.fifo",
			CredentialsArn:              "arn:aws:iam::123456789012:role/apigw",
			RequestParameters:           map[string]string{"integration.request.header.Content-Type": "'application/x-www-form-urlencoded'"},
			TemplateSelectionExpression: `\$default`,
			RequestTemplates:            map[string]string{"$default": "Action=SendMessage&MessageGroupId=$input.path('$.g')&MessageBody=$util.urlEncode($input.body)"},
			IntegrationResponses:        map[string]integration.IntegrationResponse{"$default": {}},
		},
		"fwd": {Type: "http_proxy", IntegrationMethod: "PUT", URI: "https://backend.example/messages",
			RequestParameters: map[string]string{"integration.request.header.X-Conn": "context.connectionId"}},
		"get": {Type: "http", IntegrationMethod: "GET", URI: "https://backend.example/x", TemplateSelectionExpression: `\$default`},
	}
	for route, w := range want {
		got := res.Config.Routes[route].Integration
		if !reflect.DeepEqual(*got, w) {
			t.Errorf("route %s integration\n got %+v\nwant %+v", route, got, w)
		}
		if err := got.Validate(); err != nil {
			t.Errorf("route %s: translated config does not validate: %v", route, err)
		}
	}
}
