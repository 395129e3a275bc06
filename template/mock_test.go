package template

import (
	"reflect"
	"testing"

	"github.com/wsgate/wsgate/integration"
)

// TestMockTemplates: a MOCK integration with VTL templates keeps them, its
// integration responses and selection expressions, one to one.
func TestMockTemplates(t *testing.T) {
	src := chatBase + `
  R: { Type: AWS::ApiGatewayV2::Route, Properties: { ApiId: !Ref Api, RouteKey: ask, RouteResponseSelectionExpression: $default, Target: !Sub "integrations/${M}" } }
  M:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Api
      IntegrationType: MOCK
      TemplateSelectionExpression: $request.body.kind
      RequestTemplates: { $default: '{"statusCode": #if($input.path(''$.ok''))200#{else}400#end}' }
  MR:
    Type: AWS::ApiGatewayV2::IntegrationResponse
    Properties:
      ApiId: !Ref Api
      IntegrationId: !Ref M
      IntegrationResponseKey: /2\d\d/
      TemplateSelectionExpression: ${integration.response.statuscode}
      ResponseTemplates: { $default: !Sub '{"id": "$context.connectionId", "region": "${AWS::Region}"}' }
  MR2: { Type: AWS::ApiGatewayV2::IntegrationResponse, Properties: { ApiId: !Ref Api, IntegrationId: !Ref M, IntegrationResponseKey: $default } }
  RR: { Type: AWS::ApiGatewayV2::RouteResponse, Properties: { ApiId: !Ref Api, RouteId: !Ref R, RouteResponseKey: $default } }
`
	f, err := Parse([]byte(src), "template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	res, err := Translate(f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := res.Config.Routes["ask"].Integration
	want := integration.Config{
		Type:                        "mock",
		TemplateSelectionExpression: "$request.body.kind",
		RequestTemplates:            map[string]string{"$default": `{"statusCode": #if($input.path('$.ok'))200#{else}400#end}`},
		IntegrationResponses: map[string]integration.IntegrationResponse{
			`/2\d\d/`: {
				TemplateSelectionExpression: "${integration.response.statuscode}",
				ResponseTemplates:           map[string]string{"$default": `{"id": "$context.connectionId", "region": "us-east-1"}`},
			},
			"$default": {},
		},
	}
	if !reflect.DeepEqual(*got, want) {
		t.Fatalf("integration\n got %+v\nwant %+v", got, want)
	}
	if err := got.Validate(); err != nil {
		t.Fatalf("translated config does not validate: %v", err)
	}
}
