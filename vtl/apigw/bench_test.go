package apigw

import (
	"context"
	"testing"

	"github.com/wsgate/wsgate/vtl"
)

// benchTemplates are typical request templates: the SQS pattern (one line
// of references and $util calls) and a JSON envelope built with #foreach.
var benchTemplates = map[string]string{
	"sqs": "Action=SendMessage&MessageGroupId=$input.path('$.MessageGroupId')&MessageDeduplicationId=$context.requestId" +
		"&MessageAttribute.1.Name=connectionId&MessageAttribute.1.Value.StringValue=$context.connectionId&MessageAttribute.1.Value.DataType=String" +
		"&MessageBody=$util.urlEncode($input.json($util.escapeJavaScript('$').replaceAll(\"\\\\'\",\"'\")))",
	"envelope": `#set($body = $input.json('$'))
{
  "body": $body,
  "connectionId": "$context.connectionId",
  "routeKey": "$context.routeKey",
  "authorizer": {
    #foreach($k in $context.authorizer.keySet())
    "$k": "$util.escapeJavaScript($context.authorizer.get($k))"#if($foreach.hasNext),#end
    #end
  },
  "count": $input.path('$.things').size()
}`,
}

func BenchmarkRender(b *testing.B) {
	for name, src := range benchTemplates {
		b.Run(name, func(b *testing.B) {
			tmpl, err := vtl.Parse(src)
			if err != nil {
				b.Fatal(err)
			}
			r := testRequest()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Render(context.Background(), tmpl, r, vtl.Limits{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	for name, src := range benchTemplates {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := vtl.Parse(src); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
