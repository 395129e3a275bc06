package apigw_test

import (
	"context"
	"fmt"

	"github.com/wsgate/wsgate/vtl"
	"github.com/wsgate/wsgate/vtl/apigw"
)

// A request template as API Gateway renders it for a WebSocket message.
func ExampleRender() {
	t, err := vtl.Parse(`{"id": "$context.connectionId", "text": "$util.escapeJavaScript($input.path('$.text'))", "missing": "$input.path('$.nope')"}`)
	if err != nil {
		panic(err)
	}
	out, err := apigw.Render(context.Background(), t, &apigw.Request{
		Body:    `{"action": "send", "text": "it's \"quoted\""}`,
		Context: apigw.Context{ConnectionID: "L0SM9cOFvHcCIhw="},
	}, vtl.Limits{})
	if err != nil {
		panic(err)
	}
	fmt.Println(string(out))
	// Output: {"id": "L0SM9cOFvHcCIhw=", "text": "it\'s \"quoted\"", "missing": ""}
}
