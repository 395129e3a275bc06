package template

import (
	"fmt"
	"strings"
	"testing"
)

// chatBase is a minimal valid template the error cases add to.
const chatBase = `
Resources:
  Api:
    Type: AWS::ApiGatewayV2::Api
    Properties: { ProtocolType: WEBSOCKET, RouteSelectionExpression: $request.body.action }
  Fn:
    Type: AWS::Serverless::Function
    Properties: { Runtime: nodejs20.x, Handler: app.handler, CodeUri: src }
  Integ:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Api
      IntegrationType: AWS_PROXY
      IntegrationUri: !Sub arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Fn.Arn}/invocations
`

// TestErrors: what wsgate cannot honour is refused with the logical id and
// property path, never dropped.
func TestErrors(t *testing.T) {
	cases := []struct {
		name, extra, want string
		opts              Options
	}{
		{"api key required", `
  R: { Type: AWS::ApiGatewayV2::Route, Properties: { ApiId: !Ref Api, RouteKey: x, ApiKeyRequired: true, Target: !Sub "integrations/${Integ}" } }`,
			"Resources.R.Properties.ApiKeyRequired: the route requires an API key, but the template has no AWS::ApiGateway::ApiKey with a Value", Options{}},
		{"request parameters", `
  R: { Type: AWS::ApiGatewayV2::Route, Properties: { ApiId: !Ref Api, RouteKey: $connect, RequestParameters: { route.request.querystring.token: { Required: true } }, Target: !Sub "integrations/${Integ}" } }`,
			"Resources.R.Properties.RequestParameters: not supported by wsgate", Options{}},
		{"http integration", `
  H: { Type: AWS::ApiGatewayV2::Integration, Properties: { ApiId: !Ref Api, IntegrationType: HTTP_PROXY, IntegrationUri: "https://example.com", RequestTemplates: { $default: x } } }`,
			"Resources.H.Properties.RequestTemplates: an HTTP_PROXY integration has no mapping templates", Options{}},
		{"aws action wsgate cannot build", `
  H: { Type: AWS::ApiGatewayV2::Integration, Properties: { ApiId: !Ref Api, IntegrationType: AWS, IntegrationUri: "arn:aws:apigateway:us-east-1:s3:action/PutObject" } }`,
			`Resources.H.Properties.IntegrationType: uri: "arn:aws:apigateway:us-east-1:s3:action/PutObject": wsgate cannot build the action form for service "s3"`, Options{}},
		{"authorizer off $connect", `
  R: { Type: AWS::ApiGatewayV2::Route, Properties: { ApiId: !Ref Api, RouteKey: send, AuthorizationType: AWS_IAM, Target: !Sub "integrations/${Integ}" } }`,
			"Resources.R.Properties.AuthorizationType: AWS_IAM on route send", Options{}},
		{"missing target", `
  R: { Type: AWS::ApiGatewayV2::Route, Properties: { ApiId: !Ref Api, RouteKey: send } }`,
			"Resources.R.Properties.Target: missing", Options{}},
		{"integration response without key", `
  M: { Type: AWS::ApiGatewayV2::Integration, Properties: { ApiId: !Ref Api, IntegrationType: MOCK } }
  MR: { Type: AWS::ApiGatewayV2::IntegrationResponse, Properties: { ApiId: !Ref Api, IntegrationId: !Ref M, ResponseTemplates: { $default: "$input.body" } } }`,
			"Resources.MR.Properties.IntegrationResponseKey: missing", Options{}},
		{"jwt authorizer", `
  A: { Type: AWS::ApiGatewayV2::Authorizer, Properties: { ApiId: !Ref Api, AuthorizerType: JWT, Name: j } }`,
			"Resources.A.Properties.AuthorizerType", Options{}},
		{"image function", `
  R: { Type: AWS::ApiGatewayV2::Route, Properties: { ApiId: !Ref Api, RouteKey: send, Target: !Sub "integrations/${Integ2}" } }
  Integ2: { Type: AWS::ApiGatewayV2::Integration, Properties: { ApiId: !Ref Api, IntegrationType: AWS_PROXY, IntegrationUri: !GetAtt Img.Arn } }
  Img: { Type: AWS::Lambda::Function, Properties: { PackageType: Image, Code: { ImageUri: repo:tag } } }`,
			"Resources.Img.Properties.PackageType: Image", Options{}},
		{"s3 code without asset", `
  R: { Type: AWS::ApiGatewayV2::Route, Properties: { ApiId: !Ref Api, RouteKey: send, Target: !Sub "integrations/${Integ2}" } }
  Integ2: { Type: AWS::ApiGatewayV2::Integration, Properties: { ApiId: !Ref Api, IntegrationType: AWS_PROXY, IntegrationUri: !GetAtt S3.Arn } }
  S3: { Type: AWS::Lambda::Function, Properties: { Runtime: python3.12, Handler: index.handler, Code: { S3Bucket: b, S3Key: k } } }`,
			"Resources.S3.Properties.Code: code in S3", Options{}},
		{"unknown function property", `
  R: { Type: AWS::ApiGatewayV2::Route, Properties: { ApiId: !Ref Api, RouteKey: send, Target: !Sub "integrations/${Integ}" } }
  Fn2: { Type: AWS::Serverless::Function, Properties: { Runtime: nodejs20.x, Handler: a.b, CodeUri: s, Frobnicate: 1 } }
  Integ3: { Type: AWS::ApiGatewayV2::Integration, Properties: { ApiId: !Ref Api, IntegrationType: AWS_PROXY, IntegrationUri: !GetAtt Fn2.Arn } }`,
			"Resources.Fn2.Properties.Frobnicate: not supported", Options{}},
		{"unknown ref", `
  R: { Type: AWS::ApiGatewayV2::Route, Properties: { ApiId: !Ref Api, RouteKey: send, Target: !Sub "integrations/${Nope}" } }`,
			`Resources.R.Properties.Target.Fn::Sub: Ref to "Nope"`, Options{}},
		{"parameter without default", `
  R: { Type: AWS::ApiGatewayV2::Route, Properties: { ApiId: !Ref Api, RouteKey: !Ref Key, Target: !Sub "integrations/${Integ}" } }
Parameters:
  Key: { Type: String }`,
			"Parameters.Key: no Default: pass --parameter-overrides Key=VALUE", Options{}},
		{"override of unknown parameter", "", "the template has no parameter Nope", Options{Parameters: map[string]string{"Nope": "x"}}},
		{"import value", `
  R: { Type: AWS::ApiGatewayV2::Route, Properties: { ApiId: !Ref Api, RouteKey: !ImportValue shared-key, Target: !Sub "integrations/${Integ}" } }`,
			"Resources.R.Properties.RouteKey.Fn::ImportValue: Fn::ImportValue cannot be evaluated locally", Options{}},
		{"stream without StartingPosition", `
  T: { Type: AWS::DynamoDB::Table, Properties: { KeySchema: [{AttributeName: id, KeyType: HASH}], StreamSpecification: { StreamViewType: NEW_IMAGE } } }
  S: { Type: AWS::Serverless::Function, Properties: { Runtime: nodejs20.x, Handler: a.b, CodeUri: s, Events: { C: { Type: DynamoDB, Properties: { Stream: !GetAtt T.StreamArn } } } } }`,
			"Resources.S.Properties.Events.C.Properties.StartingPosition: missing", Options{}},
		{"bad filter pattern", `
  T: { Type: AWS::DynamoDB::Table, Properties: { KeySchema: [{AttributeName: id, KeyType: HASH}], StreamSpecification: { StreamViewType: NEW_IMAGE } } }
  S: { Type: AWS::Serverless::Function, Properties: { Runtime: nodejs20.x, Handler: a.b, CodeUri: s, Events: { C: { Type: DynamoDB, Properties: { Stream: !GetAtt T.StreamArn, StartingPosition: LATEST,
    FilterCriteria: { Filters: [ { Pattern: '{"eventName": ["INSERT"]}' }, { Pattern: '{"dynamodb": {"NewImage": {"a": {"N": [{"numeric": [">", "5"]}]}}}}' } ] } } } } } }`,
			`Resources.S.Properties.Events.C.Properties.FilterCriteria.Filters[1].Pattern: dynamodb.NewImage.a.N[0]: numeric: want a number after ">", got "5"`, Options{}},
		{"mapping filter pattern not JSON", `
  T: { Type: AWS::DynamoDB::Table, Properties: { KeySchema: [{AttributeName: id, KeyType: HASH}], StreamSpecification: { StreamViewType: NEW_IMAGE } } }
  M: { Type: AWS::Lambda::EventSourceMapping, Properties: { FunctionName: !Ref Fn, EventSourceArn: !GetAtt T.StreamArn, StartingPosition: LATEST, FilterCriteria: { Filters: [ { Pattern: "{eventName: INSERT}" } ] } } }`,
			"Resources.M.Properties.FilterCriteria.Filters[0].Pattern: not JSON", Options{}},
		{"filter criteria key", `
  T: { Type: AWS::DynamoDB::Table, Properties: { KeySchema: [{AttributeName: id, KeyType: HASH}], StreamSpecification: { StreamViewType: NEW_IMAGE } } }
  M: { Type: AWS::Lambda::EventSourceMapping, Properties: { FunctionName: !Ref Fn, EventSourceArn: !GetAtt T.StreamArn, StartingPosition: LATEST, FilterCriteria: { Filter: [] } } }`,
			"Resources.M.Properties.FilterCriteria.Filter: not supported", Options{}},
		{"stream at a timestamp", `
  T: { Type: AWS::DynamoDB::Table, Properties: { KeySchema: [{AttributeName: id, KeyType: HASH}], StreamSpecification: { StreamViewType: NEW_IMAGE } } }
  M: { Type: AWS::Lambda::EventSourceMapping, Properties: { FunctionName: !Ref Fn, EventSourceArn: !GetAtt T.StreamArn, StartingPosition: AT_TIMESTAMP, StartingPositionTimestamp: 1700000000 } }`,
			"Resources.M.Properties.StartingPosition: AT_TIMESTAMP: Lambda starts only Kinesis streams at a timestamp, and AWS refuses it on a DynamoDB stream", Options{}},
		{"timestamp without AT_TIMESTAMP", `
  T: { Type: AWS::DynamoDB::Table, Properties: { KeySchema: [{AttributeName: id, KeyType: HASH}], StreamSpecification: { StreamViewType: NEW_IMAGE } } }
  S: { Type: AWS::Serverless::Function, Properties: { Runtime: nodejs20.x, Handler: a.b, CodeUri: s, Events: { C: { Type: DynamoDB, Properties: { Stream: !GetAtt T.StreamArn, StartingPosition: LATEST, StartingPositionTimestamp: 1700000000 } } } } }`,
			"Resources.S.Properties.Events.C.Properties.StartingPositionTimestamp: goes with StartingPosition AT_TIMESTAMP only", Options{}},
		{"stream arn of a table without stream", `
  T: { Type: AWS::DynamoDB::Table, Properties: { KeySchema: [{AttributeName: id, KeyType: HASH}] } }
  S: { Type: AWS::Serverless::Function, Properties: { Runtime: nodejs20.x, Handler: a.b, CodeUri: s, Events: { C: { Type: DynamoDB, Properties: { Stream: !GetAtt T.StreamArn, StartingPosition: LATEST } } } } }`,
			"T has no StreamSpecification", Options{}},
		{"two stages", `
  S1: { Type: AWS::ApiGatewayV2::Stage, Properties: { ApiId: !Ref Api, StageName: a } }
  S2: { Type: AWS::ApiGatewayV2::Stage, Properties: { ApiId: !Ref Api, StageName: b } }`,
			"2 stages (a, b): choose one with --stage", Options{}},
		{"unknown stage", `
  S1: { Type: AWS::ApiGatewayV2::Stage, Properties: { ApiId: !Ref Api, StageName: a } }`,
			`no stage "prod" (the template has a)`, Options{Stage: "prod"}},
		{"sub bomb", subBomb(), "expand to more than", Options{}},
		{"condition cycle", `
  X: { Type: AWS::SNS::Topic, Condition: A }
Conditions:
  A: !Condition B
  B: !Not [!Condition A]`,
			"refers to itself", Options{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := chatBase + tc.extra
			f, err := Parse([]byte(src), "template.yaml")
			if err != nil {
				t.Fatal(err)
			}
			_, err = Translate(f, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestParseErrors: the reader's own refusals.
func TestParseErrors(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"unknown tag", "Resources:\n  A: !Frob x\n", "line 2: unknown tag !Frob"},
		{"duplicate key", "Resources:\n  A: 1\n  A: 2\n", `key "A" appears twice`},
		{"not a mapping", "- a\n- b\n", "not a mapping"},
		{"empty", "", "empty document"},
		{"alias bomb", aliasBomb(), "expands to more than"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src), "t.yaml")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestShortForms: every short form decodes to its long form.
func TestShortForms(t *testing.T) {
	src := `
A: !Ref X
B: !GetAtt R.Arn
C: !Sub [ "${a}", { a: 1 } ]
D: !If [ C, 1, 2 ]
E: !Select [ 0, !Split [ ",", "a,b" ] ]
F: !Condition C
G: !FindInMap [ M, a, b ]
H: !And [ !Equals [ 1, 1 ], !Or [ !Not [ !Condition C ], !Condition C ] ]
I: !Join [ "", [ a, b ] ]
`
	f, err := Parse([]byte(src), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"A": "Ref", "B": "Fn::GetAtt", "C": "Fn::Sub", "D": "Fn::If", "E": "Fn::Select",
		"F": "Condition", "G": "Fn::FindInMap", "H": "Fn::And", "I": "Fn::Join"}
	for k, fn := range want {
		m, ok := f.Doc[k].(map[string]any)
		if _, has := m[fn]; !ok || !has {
			t.Errorf("%s = %#v, want {%s: ...}", k, f.Doc[k], fn)
		}
	}
	inner := f.Doc["E"].(map[string]any)["Fn::Select"].([]any)[1].(map[string]any)
	if _, ok := inner["Fn::Split"]; !ok {
		t.Errorf("nested short form: %#v", inner)
	}
}

// TestServerlessErrors: serverless.yml refusals name the path.
func TestServerlessErrors(t *testing.T) {
	base := "service: s\nprovider: { name: aws, runtime: nodejs20.x }\n"
	cases := []struct{ name, src, want string }{
		{"ssm variable", base + "functions:\n  f: { handler: a.b, environment: { X: '${ssm:/secret}' } }\n",
			"functions.f.environment.X: ${ssm:/secret}: this variable source is not resolved"},
		{"missing self", base + "functions:\n  f: { handler: a.b, environment: { X: '${self:custom.nope}' } }\n",
			"functions.f.environment.X: ${self:custom.nope}: no value"},
		{"self cycle", base + "custom: { a: '${self:custom.b}', b: '${self:custom.a}' }\nfunctions:\n  f: { handler: a.b }\n",
			"refers to itself"},
		{"authorizer off $connect", base + "functions:\n  f: { handler: a.b, events: [ { websocket: { route: send, authorizer: f } } ] }\n",
			"functions.f.events[0].websocket.authorizer: authorizers run on $connect only"},
		{"unknown function key", base + "functions:\n  f: { handler: a.b, frobnicate: true }\n",
			"functions.f.frobnicate: not supported"},
		{"no runtime", "service: s\nprovider: { name: aws }\nfunctions:\n  f: { handler: a.b, events: [ { websocket: $default } ] }\n",
			"functions.f.runtime: missing"},
		{"self bomb", base + selfBomb() + "functions:\n  f: { handler: a.b }\n", "expand to more than"},
		{"other provider", "service: s\nprovider: { name: google }\n", `provider.name: "google"`},
		{"filter pattern", base + "functions:\n  f: { handler: a.b, events: [ { stream: { arn: 'arn:aws:dynamodb:us-east-1:1:table/t/stream/x', filterPatterns: [ { eventName: INSERT } ] } } ] }\n",
			`functions.f.events[0].stream.filterPatterns[0]: eventName: want a list of rules or an object, got "INSERT"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse([]byte(tc.src), "serverless.yml")
			if err != nil {
				t.Fatal(err)
			}
			if f.Kind != KindServerless {
				t.Fatalf("kind %s", f.Kind)
			}
			_, err = Translate(f, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// aliasBomb is a few lines of YAML whose aliases expand to 10^8 values.
func aliasBomb() string {
	var b strings.Builder
	b.WriteString("a0: &a0 [x,x,x,x,x,x,x,x,x,x]\n")
	for i := 1; i < 8; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [%s]\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*a%d,", i-1), 10), ","))
	}
	return b.String()
}

// selfBomb is the same through serverless.yml's ${self:} references.
func selfBomb() string {
	var b strings.Builder
	b.WriteString("custom:\n  c0: [x,x,x,x,x,x,x,x,x,x]\n")
	for i := 1; i < 8; i++ {
		fmt.Fprintf(&b, "  c%d: [%s]\n", i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("'${self:custom.c%d}',", i-1), 10), ","))
	}
	return b.String()
}

// subBomb nests Fn::Sub variables so each level uses the one below ten
// times: 10^8 evaluations unless bounded.
func subBomb() string {
	v := "x"
	for range 8 {
		v = fmt.Sprintf("{ \"Fn::Sub\": [ \"%s\", { v: %s } ] }", strings.Repeat("${v}", 10), v)
	}
	return "\n  R: { Type: AWS::ApiGatewayV2::Route, Properties: { ApiId: !Ref Api, RouteKey: " + v + ", Target: !Sub \"integrations/${Integ}\" } }"
}
