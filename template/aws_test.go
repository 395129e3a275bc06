package template

import (
	"reflect"
	"testing"

	"github.com/wsgate/wsgate/gateway"
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
      ContentHandlingStrategy: CONVERT_TO_TEXT
      IntegrationResponseSelectionExpression: ${integration.response.statuscode}
      RequestParameters: { integration.request.header.Content-Type: "'application/x-www-form-urlencoded'" }
      TemplateSelectionExpression: \$default
      RequestTemplates: { $default: "Action=SendMessage&MessageGroupId=$input.path('$.g')&MessageBody=$util.urlEncode($input.body)" }
  QR: { Type: AWS::ApiGatewayV2::IntegrationResponse, Properties: { ApiId: !Ref Api, IntegrationId: !Ref Q, IntegrationResponseKey: $default, ContentHandlingStrategy: CONVERT_TO_BINARY } }
  P: { Type: AWS::ApiGatewayV2::Route, Properties: { ApiId: !Ref Api, RouteKey: fwd, Target: !Sub "integrations/${H}" } }
  H:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Api
      IntegrationType: HTTP_PROXY
      IntegrationMethod: PUT
      IntegrationUri: https://backend.example/messages
      PassthroughBehavior: WHEN_NO_MATCH
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
			URI:                                    "arn:aws:apigateway:us-east-1:sqs:path/000000000000/q.fifo",
			CredentialsArn:                         "arn:aws:iam::123456789012:role/apigw",
			RequestParameters:                      map[string]string{"integration.request.header.Content-Type": "'application/x-www-form-urlencoded'"},
			TemplateSelectionExpression:            `\$default`,
			RequestTemplates:                       map[string]string{"$default": "Action=SendMessage&MessageGroupId=$input.path('$.g')&MessageBody=$util.urlEncode($input.body)"},
			IntegrationResponses:                   map[string]integration.IntegrationResponse{"$default": {ContentHandlingStrategy: "CONVERT_TO_BINARY"}},
			PassthroughBehavior:                    "NEVER",
			ContentHandlingStrategy:                "CONVERT_TO_TEXT",
			IntegrationResponseSelectionExpression: "${integration.response.statuscode}",
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

// TestModelsAndAPIKeys: route RequestModels and ModelSelectionExpression,
// the API's models (Schema as YAML or as JSON text) and ApiKeyRequired
// with the API keys whose Value the template gives.
func TestModelsAndAPIKeys(t *testing.T) {
	src := chatBase + `
  R:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Api
      RouteKey: send
      ApiKeyRequired: true
      ModelSelectionExpression: $request.body.kind
      RequestModels: { $default: Msg, n: Num }
      Target: !Sub "integrations/${Integ}"
  M1: { Type: AWS::ApiGatewayV2::Model, Properties: { ApiId: !Ref Api, Name: Msg, ContentType: application/json, Schema: { type: object, required: [text] } } }
  M2: { Type: AWS::ApiGatewayV2::Model, Properties: { ApiId: !Ref Api, Name: Num, Schema: '{"type": "object", "required": ["n"]}' } }
  K: { Type: AWS::ApiGateway::ApiKey, Properties: { Name: partner, Value: "0123456789abcdefghij", Enabled: true } }
  P:
    Type: AWS::ApiGateway::UsagePlan
    Properties: { ApiStages: [{ ApiId: !Ref Api }], Quota: { Limit: 100, Period: WEEK, Offset: 1 }, Throttle: { RateLimit: 5 } }
  PK: { Type: AWS::ApiGateway::UsagePlanKey, Properties: { KeyId: !Ref K, KeyType: API_KEY, UsagePlanId: !Ref P } }
`
	f, err := Parse([]byte(src), "template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	res, err := Translate(f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := res.Config
	r := cfg.Routes["send"]
	if !r.APIKeyRequired || r.ModelSelectionExpression != "$request.body.kind" || !reflect.DeepEqual(r.RequestModels, map[string]string{"$default": "Msg", "n": "Num"}) {
		t.Errorf("route %+v", r)
	}
	if len(cfg.APIKeys) != 1 || cfg.APIKeys[0].Value != "0123456789abcdefghij" || cfg.APIKeys[0].Name != "partner" {
		t.Errorf("api keys %+v", cfg.APIKeys)
	}
	plans := []gateway.UsagePlan{{Name: "P", APIKeys: []string{"partner"},
		Throttle: &gateway.Throttling{RateLimit: 5, BurstLimit: 5000}, Quota: &gateway.Quota{Limit: 100, Period: "WEEK", Offset: 1}}}
	if !reflect.DeepEqual(cfg.UsagePlans, plans) {
		t.Errorf("usage plans %+v", cfg.UsagePlans)
	}
	for _, s := range res.Skipped {
		if s.ID == "K" || s.ID == "P" || s.ID == "PK" {
			t.Errorf("%s read but listed as skipped: %s", s.ID, s.Reason)
		}
	}
	want := map[string]any{
		"Msg": map[string]any{"type": "object", "required": []any{"text"}},
		"Num": map[string]any{"type": "object", "required": []any{"n"}},
	}
	if !reflect.DeepEqual(cfg.Models, want) {
		t.Errorf("models %#v", cfg.Models)
	}
	checkValid(t, res)
}
