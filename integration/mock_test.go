package integration

import (
	"context"
	"testing"
)

func TestMock(t *testing.T) {
	tests := []struct {
		name     string
		response any
		body     string
		want     string
	}{
		{name: "echo", body: "hi \"there\" <b>\n", want: `{"statusCode":200,"body":"hi \"there\" <b>\n"}`},
		{name: "echo empty", want: `{"statusCode":200,"body":""}`},
		{name: "configured", response: map[string]any{"statusCode": 403, "body": "no"}, body: "ignored", want: `{"body":"no","statusCode":403}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in, err := New(Config{Type: "mock", Response: tc.response}, Env{})
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			out, err := in.Invoke(context.Background(), &Invocation{Payload: []byte(`{}`), Body: tc.body})
			if err != nil || string(out) != tc.want {
				t.Fatalf("got %s, %v; want %s", out, err, tc.want)
			}
		})
	}
	if _, err := New(Config{Type: "mock", Response: func() {}}, Env{}); err == nil {
		t.Error("unmarshalable response accepted")
	}
}
