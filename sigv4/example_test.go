package sigv4_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/wsgate/wsgate/sigv4"
)

// A backend pushes a message to a WebSocket client through the management
// API: POST /{stage}/@connections/{id}, signed for execute-api. The server
// verifies it in its handler before doing anything else.
func Example() {
	creds := sigv4.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}
	v := &sigv4.Verifier{
		Store:   sigv4.StaticCredentials{creds.AccessKeyID: creds},
		Service: "execute-api",
		Region:  "us-east-1",
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := v.Verify(r)
		if err != nil {
			err.(*sigv4.Error).WriteHTTP(w) // 403 + x-amzn-ErrorType + {"message": ...}
			return
		}
		body, _ := io.ReadAll(r.Body) // still readable after Verify
		fmt.Printf("%s posted %q to %s\n", id.AccessKeyID, body, r.RequestURI)
	}))
	defer srv.Close()

	// The connection id is a path label: escape it ("=" becomes %3D) and
	// keep "@connections" literal, as the AWS SDKs do.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/dev/@connections/L0SM9cOFvHcCIhw%3D", strings.NewReader("hello"))
	if err := sigv4.Sign(req, creds, "execute-api", "us-east-1", time.Now(), ""); err != nil {
		panic(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode)

	// Unsigned: the AWS error, as API Gateway sends it.
	resp, _ = http.Post(srv.URL+"/dev/@connections/L0SM9cOFvHcCIhw%3D", "text/plain", strings.NewReader("hello"))
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), string(msg))
	// Output:
	// AKIDEXAMPLE posted "hello" to /dev/@connections/L0SM9cOFvHcCIhw%3D
	// 200
	// 403 MissingAuthenticationTokenException {"message":"Missing Authentication Token"}
}

// A presigned URL for an IAM-authorised WebSocket $connect: browsers cannot
// set headers on the handshake, so the signature goes in the query.
func ExamplePresign() {
	creds := sigv4.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}
	req, _ := http.NewRequest(http.MethodGet, "wss://abc123.execute-api.us-east-1.amazonaws.com/prod?room=lobby", nil)
	at := time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC)
	u, err := sigv4.Presign(req, creds, "execute-api", "us-east-1", at, 5*time.Minute)
	if err != nil {
		panic(err)
	}
	fmt.Println(strings.ReplaceAll(u.String(), "&", "\n  &"))
	// Output:
	// wss://abc123.execute-api.us-east-1.amazonaws.com/prod?room=lobby
	//   &X-Amz-Algorithm=AWS4-HMAC-SHA256
	//   &X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fexecute-api%2Faws4_request
	//   &X-Amz-Date=20150830T123600Z
	//   &X-Amz-SignedHeaders=host
	//   &X-Amz-Expires=300
	//   &X-Amz-Signature=dea7a08bbf3782a66bd4b1f060c37e30aa4610dab59996d588906c60674744b0
}
