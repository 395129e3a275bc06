package apigw

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/vtl"
)

func testRequest() *Request {
	return &Request{
		Body:           `{"action":"send","message":"it's a \"test\"","MessageGroupId":"g1","things":{"1":{},"2":{},"3":{}},"n":1.5}`,
		QueryString:    map[string]string{"name": "me", "token": "a b"},
		Header:         map[string]string{"Host": "example.com", "X-Api-Key": "k1"},
		StageVariables: map[string]string{"table": "Connections", "queue": "q"},
		Context: Context{
			APIID:             "abc123",
			ConnectionID:      "L0SM9cOFvHcCIhw=",
			ConnectedAt:       1547557733712,
			DomainName:        "abc123.execute-api.us-east-1.amazonaws.com",
			EventType:         "MESSAGE",
			ExtendedRequestID: "L0SM9GvDvHcFggA=",
			MessageDirection:  "IN",
			MessageID:         "L0SM9cOFvHcCIhw=",
			RequestID:         "L0SM9GvDvHcFggA=",
			RequestTime:       "15/Jan/2019:13:08:53 +0000",
			RequestTimeEpoch:  1547557733712,
			RouteKey:          "send",
			Stage:             "prod",
			Authorizer:        map[string]any{"principalId": "user1", "key": "value", "numKey": 1.0, "boolKey": true, "UserId": "u-42"},
			Identity:          Identity{SourceIP: "127.0.0.1", UserAgent: "test-agent"},
		},
	}
}

func renderReq(t *testing.T, src string, r *Request) string {
	t.Helper()
	tmpl, err := vtl.Parse(src)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	out, err := Render(context.Background(), tmpl, r, vtl.Limits{})
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	return string(out)
}

// TestGolden renders the templates AWS documents and publishes, compared
// byte for byte with the output AWS documents or the output its semantics
// give.
func TestGolden(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{
			// The mapping template reference's $util.parseJson example and
			// its documented output.
			name: "parseJson doc example",
			src: "#set ($errorMessageObj = $util.parseJson($input.path('$.errorMessage')))\n" +
				"{\n   \"errorMessageObjKey2ArrVal\" : $errorMessageObj.key2.arr[0]\n}\n",
			want: "{\n   \"errorMessageObjKey2ArrVal\" : 1\n}\n",
		},
		{
			// AWS Solutions Constructs' default SQS route template
			// (aws-apigatewayv2websocket-sqs): the FIFO queue message with
			// $util.urlEncode and the escapeJavaScript/replaceAll idiom.
			name: "sqs fifo websocket pattern",
			src: "Action=SendMessage&MessageGroupId=$input.path('$.MessageGroupId')&MessageDeduplicationId=$context.requestId" +
				"&MessageAttribute.1.Name=connectionId&MessageAttribute.1.Value.StringValue=$context.connectionId&MessageAttribute.1.Value.DataType=String" +
				"&MessageBody=$util.urlEncode($input.json($util.escapeJavaScript('$').replaceAll(\"\\\\'\",\"'\")))",
			want: "Action=SendMessage&MessageGroupId=g1&MessageDeduplicationId=L0SM9GvDvHcFggA=" +
				"&MessageAttribute.1.Name=connectionId&MessageAttribute.1.Value.StringValue=L0SM9cOFvHcCIhw=&MessageAttribute.1.Value.DataType=String" +
				"&MessageBody=" + URLEncode(`{"action":"send","message":"it's a \"test\"","MessageGroupId":"g1","things":{"1":{},"2":{},"3":{}},"n":1.5}`),
		},
		{
			name: "sqs pattern with the authorizer",
			src:  `MessageBody={"requestContext": {"authorizer": {"UserId": "$context.authorizer.UserId"}, "connectionId": "$context.connectionId"}, "message": $util.urlEncode($input.json('$.action'))}`,
			want: `MessageBody={"requestContext": {"authorizer": {"UserId": "u-42"}, "connectionId": "L0SM9cOFvHcCIhw="}, "message": %22send%22}`,
		},
		{
			// The reference documents escapeJavaScript's \' and the
			// replaceAll that turns it back for JSON.
			name: "escapeJavaScript and replaceAll",
			src:  `{"input": "$util.escapeJavaScript($input.json('$.message')).replaceAll("\\'","'")", "raw": "$util.escapeJavaScript($input.path('$.message'))"}`,
			want: `{"input": "\"it's a \\\"test\\\"\"", "raw": "it\'s a \"test\""}`,
		},
		{
			// $input.path of an object renders as Java's map, its arrays
			// as JSON (json-smart's JSONArray), checked against AWS by
			// LocalStack's validated tests.
			name: "input.path rendering",
			src:  `$input.path('$')|$input.path('$.b')|$input.path('$.b[0]')|$input.path('$.s')`,
			want: `{a=1, b=[{"c":5}], s=x}|[{"c":5}]|{c=5}|x`,
		},
		{
			// A map literal renders as Java's map, a quirk users meet
			// when they base64-encode one.
			name: "map literal rendering",
			src:  `#set($data = {"hoge": "$input.params('name')", "hoge2": $input.json('$.things')})$data $util.base64Encode($data)`,
			want: `{hoge=me, hoge2={"1":{},"2":{},"3":{}}} ` + "e2hvZ2U9bWUsIGhvZ2UyPXsiMSI6e30sIjIiOnt9LCIzIjp7fX19",
		},
		{
			name: "stage variables three ways",
			src:  `$stageVariables.table $stageVariables['table'] ${stageVariables['queue']} [$stageVariables.none]`,
			want: `Connections Connections q []`,
		},
		{
			// Authorizer context values are stringified in templates.
			name: "authorizer",
			src:  `$context.authorizer.principalId $context.authorizer.key $context.authorizer.numKey $context.authorizer.boolKey #if($context.authorizer.numKey == "1")string#end`,
			want: `user1 value 1 true string`,
		},
		{
			name: "context",
			src:  `$context.apiId $context.connectionId $context.connectedAt $context.eventType $context.routeKey $context.stage $context.requestTimeEpoch $context.identity.sourceIp [$context.identity.apiKey] $context.messageId`,
			want: `abc123 L0SM9cOFvHcCIhw= 1547557733712 MESSAGE send prod 1547557733712 127.0.0.1 [] L0SM9cOFvHcCIhw=`,
		},
		{
			name: "params",
			src:  `$input.params('name') [$input.params('nope')] $input.params('x-api-key') $input.params().querystring.get('token')`,
			want: `me [] k1 a b`,
		},
		{
			name: "input.json values",
			src:  `$input.json('$.action') $input.json('$.n') $input.json('$.things') [$input.json('$.missing')] $input.json('$..action')`,
			want: `"send" 1.5 {"1":{},"2":{},"3":{}} [] ["send"]`,
		},
		{
			name: "size of a map from path",
			src:  `"count" : "$input.path('$.things').size()"`,
			want: `"count" : "3"`,
		},
		{
			// SNS publish from a route, no Lambda: the message url-encoded
			// into the Query API form.
			name: "sns publish pattern",
			src:  `Action=Publish&TopicArn=$util.urlEncode("arn:aws:sns:us-east-1:123456789012:$stageVariables.queue")&Message=$util.urlEncode($input.body)`,
			want: "Action=Publish&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3Aq&Message=" + URLEncode(testRequest().Body),
		},
		{
			// DynamoDB connection table with no Lambda ($connect PutItem).
			name: "dynamodb putitem pattern",
			src: `{"TableName": "$stageVariables.table", "Item": {"connectionId": {"S": "$context.connectionId"}, ` +
				`"connectedAt": {"N": "$context.connectedAt"}}}`,
			want: `{"TableName": "Connections", "Item": {"connectionId": {"S": "L0SM9cOFvHcCIhw="}, "connectedAt": {"N": "1547557733712"}}}`,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := testRequest()
			if c.name == "input.path rendering" {
				r.Body = `{"a": 1, "b": [{"c": 5}], "s": "x"}`
			}
			if c.name == "parseJson doc example" {
				r.Body = `{"errorMessage":"{\"key1\":\"var1\",\"key2\":{\"arr\":[1,2,3]}}"}`
			}
			if got := renderReq(t, c.src, r); got != c.want {
				t.Errorf("got\n%s\nwant\n%s", got, c.want)
			}
		})
	}
}

// TestGoldenJSON renders templates whose output AWS documents as JSON (its
// whitespace comes from Velocity's line handling), compared as JSON.
func TestGoldenJSON(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{
			// The reference's "pass all parameters" template.
			name: "all params",
			src: `#set($allParams = $input.params())
{
  "params" : {
    #foreach($type in $allParams.keySet())
    #set($params = $allParams.get($type))
    "$type" : {
      #foreach($paramName in $params.keySet())
      "$paramName" : "$util.escapeJavaScript($params.get($paramName))"
      #if($foreach.hasNext),#end
      #end
    }
    #if($foreach.hasNext),#end
    #end
  }
}`,
			want: `{"params":{"path":{},"querystring":{"name":"me","token":"a b"},"header":{"Host":"example.com","X-Api-Key":"k1"}}}`,
		},
		{
			name: "name and body",
			src:  "{\n    \"name\" : \"$input.params('name')\",\n    \"body\" : $input.json('$.things') \n}",
			want: `{"name":"me","body":{"1":{},"2":{},"3":{}}}`,
		},
		{
			// The documented $context example, WebSocket variables.
			name: "context example",
			src: `{
    "stage" : "$context.stage",
    "request_id" : "$context.requestId",
    "api_id" : "$context.apiId",
    "source_ip" : "$context.identity.sourceIp",
    "user-agent" : "$context.identity.userAgent",
    "api_key" : "$context.identity.apiKey"
}`,
			want: `{"stage":"prod","request_id":"L0SM9GvDvHcFggA=","api_id":"abc123","source_ip":"127.0.0.1","user-agent":"test-agent","api_key":""}`,
		},
		{
			// Serverless Framework's lambda-integration request template
			// shape: #define'd $loop over maps set just before use.
			name: "define loop",
			src: `#set( $body = $input.json("$") )
#define( $loop )
{
    #foreach($key in $map.keySet())
        #set( $k = $util.escapeJavaScript($key) )
        #set( $v = $util.escapeJavaScript($map.get($key)).replaceAll("\\'", "'") )
        "$k": "$v"
        #if( $foreach.hasNext ) , #end
    #end
}
#end
{
    "body": $body,
    "method": "$context.eventType",
    "principalId": "$context.authorizer.principalId",
    #set( $map = $context.authorizer )
    "enhancedAuthContext": $loop,
    #set( $map = $input.params().querystring )
    "query": $loop,
    #set( $map = $stageVariables )
    "stageVariables": $loop
}`,
			want: `{"body":{"action":"send","message":"it's a \"test\"","MessageGroupId":"g1","things":{"1":{},"2":{},"3":{}},"n":1.5},
"method":"MESSAGE","principalId":"user1",
"enhancedAuthContext":{"UserId":"u-42","boolKey":"true","key":"value","numKey":"1","principalId":"user1"},
"query":{"name":"me","token":"a b"},"stageVariables":{"queue":"q","table":"Connections"}}`,
		},
		{
			// A macro, as LocalStack's users write the same loop.
			name: "macro loop",
			src: `#macro( loop $map )
{
    #foreach($key in $map.keySet())
        "$key": "$util.escapeJavaScript($map.get($key))"
        #if( $foreach.hasNext ) , #end
    #end
}
#end
{"query": #loop($input.params().querystring), "identity": #loop($context.identity)}`,
			want: `{"query":{"name":"me","token":"a b"},"identity":{"sourceIp":"127.0.0.1","userAgent":"test-agent"}}`,
		},
		{
			// Step Functions StartExecution: the body as the input string.
			name: "step functions pattern",
			src: `#set($body = $util.escapeJavaScript($input.json('$')).replaceAll("\\'","'"))
{"input": "$body", "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:sm", "name": "$context.requestId"}`,
			want: `{"input":"{\"action\":\"send\",\"message\":\"it's a \\\"test\\\"\",\"MessageGroupId\":\"g1\",\"things\":{\"1\":{},\"2\":{},\"3\":{}},\"n\":1.5}","stateMachineArn":"arn:aws:states:us-east-1:123456789012:stateMachine:sm","name":"L0SM9GvDvHcFggA="}`,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := renderReq(t, c.src, testRequest())
			var g, w any
			if err := json.Unmarshal([]byte(got), &g); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, got)
			}
			if err := json.Unmarshal([]byte(c.want), &w); err != nil {
				t.Fatalf("want is not JSON: %v", err)
			}
			if !reflect.DeepEqual(g, w) {
				t.Errorf("got\n%s\nwant\n%s", got, c.want)
			}
		})
	}
}

func TestEscapeJavaScript(t *testing.T) {
	cases := map[string]string{
		`it's`:       `it\'s`,
		`"q"`:        `\"q\"`,
		`a\b`:        `a\\b`,
		`a/b`:        `a\/b`,
		"l1\nl2\tx":  `l1\nl2\tx`,
		"\x01\x1f":   `\u0001\u001F`,
		"é":          `\u00E9`,
		"😀":          `\uD83D\uDE00`,
		"plain $ {}": "plain $ {}",
	}
	for in, want := range cases {
		if got := EscapeJavaScript(in); got != want {
			t.Errorf("EscapeJavaScript(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestURLAndBase64(t *testing.T) {
	if got := URLEncode("x=a+b c~*é"); got != "x%3Da%2Bb+c%7E*%C3%A9" {
		t.Errorf("URLEncode = %q", got)
	}
	if got, err := URLDecode("x=a+b%20%C3%A9"); err != nil || got != "x=a b é" {
		t.Errorf("URLDecode = %q, %v", got, err)
	}
	if _, err := URLDecode("bad%2"); err == nil {
		t.Error("URLDecode of a cut escape: no error")
	}
	got := renderReq(t, `$util.base64Encode("héllo") $util.base64Decode("aMOpbGxv") $util.base64Decode("aMOpbGxv")`, testRequest())
	if got != "aMOpbGxv héllo héllo" {
		t.Errorf("base64 = %q", got)
	}
	tmpl, _ := vtl.Parse(`$util.base64Decode("!!!")`)
	if _, err := Render(context.Background(), tmpl, testRequest(), vtl.Limits{}); err == nil || !strings.Contains(err.Error(), "not base64") {
		t.Errorf("bad base64: %v", err)
	}
	tmpl, _ = vtl.Parse(`$util.parseJson("{bad")`)
	if _, err := Render(context.Background(), tmpl, testRequest(), vtl.Limits{}); err == nil || !strings.Contains(err.Error(), "not JSON") {
		t.Errorf("bad JSON: %v", err)
	}
}

func TestBody(t *testing.T) {
	r := testRequest()
	r.Body = ""
	if got := renderReq(t, `$input.body|$input.json('$')|[$input.path('$.a')]`, r); got != "{}|{}|[]" {
		t.Errorf("empty body: %q", got)
	}
	r.Body = "not json"
	if got := renderReq(t, `$input.body|[$input.json('$')]|[$input.path('$.a')]`, r); got != "not json|[]|[]" {
		t.Errorf("text body: %q", got)
	}
}

func TestPathResultIsACopy(t *testing.T) {
	r := testRequest()
	r.Body = `{"l":[1]}`
	got := renderReq(t, `#set($l = $input.path('$.l'))#set($d = $l.add(2))$l $input.json('$.l')`, r)
	if got != "[1,2] [1]" {
		t.Errorf("got %q", got)
	}
}

func TestJSONPath(t *testing.T) {
	doc := `{"store":{"book":[{"title":"a","price":8},{"title":"b","price":12},{"title":"c"}],"bicycle":{"price":19.95}},"my-key":"h","x":null}`
	cases := []struct{ path, want string }{
		{"$", doc},
		{"$.store.book[0].title", `"a"`},
		{"store.book[1].price", `12`},
		{"$['store']['bicycle']", `{"price":19.95}`},
		{`$["my-key"]`, `"h"`},
		{"$.my-key", `"h"`},
		{"$.store.book[-1].title", `"c"`},
		{"$.store.book[*].title", `["a","b","c"]`},
		{"$.store.book[0,2].title", `["a","c"]`},
		{"$.store.book[1:].title", `["b","c"]`},
		{"$.store.book[:1].title", `["a"]`},
		{"$..price", `[8,12,19.95]`},
		{"$.store.*.price", `[19.95]`},
		{"$.store.book[0]['title','price']", `{"title":"a","price":8}`},
		{"$.x", `null`},
		{"$.missing", ``},
		{"$.store.book[9]", ``},
		{"$.store.book[*].missing", `[]`},
	}
	doc2, err := parseJSON(doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		jp, err := compilePath(c.path)
		if err != nil {
			t.Errorf("compile %q: %v", c.path, err)
			continue
		}
		v, found := jp.eval(doc2)
		got := ""
		if found {
			got = vtl.JSON(v)
		}
		if got != c.want {
			t.Errorf("%s = %s, want %s", c.path, got, c.want)
		}
	}
	for _, bad := range []string{"$[?(@.price < 10)]", "$.length()", "$[", "$.a[x]"} {
		if _, err := compilePath(bad); err == nil {
			t.Errorf("compile %q: no error", bad)
		}
	}
}

func TestJSONDepth(t *testing.T) {
	deep := strings.Repeat("[", maxJSONDepth+1) + strings.Repeat("]", maxJSONDepth+1)
	if _, err := parseJSON(deep); err == nil {
		t.Fatal("no error for JSON nested too deep")
	}
	r := testRequest()
	r.Body = deep
	if got := renderReq(t, `[$input.json('$')]`, r); got != "[]" {
		t.Errorf("got %q", got)
	}
}

func TestSelection(t *testing.T) {
	r := testRequest()
	cases := []struct{ expr, status, want string }{
		{`\$default`, "", "$default"},
		{"static", "", "static"},
		{"$request.body.action", "", "send"},
		{"${request.body.action}-v1", "", "send-v1"},
		{"$request.body.things", "", "{1={}, 2={}, 3={}}"},
		{"$request.body.n", "", "1.5"},
		{"$request.body.missing", "", ""},
		{"${integration.response.statuscode}", "200", "200"},
		{"${integration.response.header.X}", "200", ""},
	}
	for _, c := range cases {
		sel, err := ParseSelection(c.expr)
		if err != nil {
			t.Errorf("ParseSelection(%q): %v", c.expr, err)
			continue
		}
		if got := sel.Eval(r, c.status); got != c.want {
			t.Errorf("%q = %q, want %q", c.expr, got, c.want)
		}
	}
	res := &Result{Status: "404", Header: http.Header{"X-Outcome": {"late"}, "X-Many": {"a", "b"}}, Body: `{"error": {"code": "E7"}}`}
	for expr, want := range map[string]string{
		"${integration.response.statuscode}":                            "404",
		"${integration.response.header.x-outcome}":                      "late",
		"${integration.response.multivalueheader.X-Many}":               "a,b",
		"${integration.response.body.error.code}":                       "E7",
		"${integration.response.body.nope}":                             "",
		"$request.body.action/${integration.response.header.X-Missing}": "send/",
	} {
		sel, err := ParseSelection(expr)
		if err != nil {
			t.Errorf("ParseSelection(%q): %v", expr, err)
			continue
		}
		if got := sel.EvalResult(r, res); got != want {
			t.Errorf("%q on a result = %q, want %q", expr, got, want)
		}
	}
	for _, bad := range []string{"$request.header.x", "${request.body.a", "$context.x", "$request.body.a[?(@.x)]", "${integration.response.body.a[?(@.x)]}"} {
		if _, err := ParseSelection(bad); err == nil {
			t.Errorf("ParseSelection(%q): no error", bad)
		}
	}
}

func TestInputBounds(t *testing.T) {
	r := testRequest()
	r.Body = "[" + strings.TrimSuffix(strings.Repeat("1,", 5000), ",") + "]"
	tmpl, err := vtl.Parse(`#set($l = [])#foreach($i in [1..500])#set($d = $l.add($input.path('$')))#end`)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Render(context.Background(), tmpl, r, vtl.Limits{})
	if !errors.Is(err, vtl.ErrLimit) || !strings.Contains(err.Error(), "$input.path produced more than") {
		t.Fatalf("got %v, want the $input.path bound", err)
	}
}
