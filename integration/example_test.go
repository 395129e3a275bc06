package integration_test

import (
	"context"
	"fmt"

	"github.com/wsgate/wsgate/integration"
)

// A mock integration echoes the message body as a Lambda proxy response.
func ExampleNew() {
	in, err := integration.New(integration.Config{Type: "mock"}, integration.Env{})
	if err != nil {
		panic(err)
	}
	defer in.Close()
	out, err := in.Invoke(context.Background(), &integration.Invocation{
		Payload: []byte(`{"body":"hello"}`),
		Body:    "hello",
	})
	fmt.Println(string(out), err)
	// Output: {"statusCode":200,"body":"hello"} <nil>
}
