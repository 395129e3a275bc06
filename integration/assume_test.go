package integration

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/testenv"
)

// signedBy is the access key of a SigV4 Authorization header.
func signedBy(s seen) string {
	m := regexp.MustCompile(`Credential=([^/]+)/`).FindStringSubmatch(s.header.Get("Authorization"))
	if m == nil {
		return ""
	}
	return m[1]
}

// TestCredentialsArnAssumesTheRole: an aws integration with a role in
// credentialsArn asks moto_server's STS (AWS_ENDPOINT_URL_STS) for the
// role's credentials and signs the service request with them; moto knows
// the key as the assumed role's. The credentials are cached, and asked for
// again when they come within refreshBefore of their expiry.
func TestCredentialsArnAssumesTheRole(t *testing.T) {
	moto := testenv.Moto(t)
	awsEnv(t)
	t.Setenv("AWS_ENDPOINT_URL_STS", moto)
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1") // STS's own variable wins
	url, got := serviceStub(t, 200, "<SendMessageResponse/>")
	t.Setenv("AWS_ENDPOINT_URL_SQS", url)
	const role = "arn:aws:iam::123456789012:role/apigw-sqs"
	in, err := New(Config{
		Type: "aws", URI: "arn:aws:apigateway:us-east-1:sqs:path/123456789012/q",
		CredentialsArn:   role,
		RequestTemplates: map[string]string{"$default": "Action=SendMessage&MessageBody=x"},
	}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	call := func() seen {
		t.Helper()
		if _, err := in.Invoke(context.Background(), &Invocation{Payload: messageEvent(`{}`)}); err != nil {
			t.Fatal(err)
		}
		return <-got
	}
	first := call()
	key := signedBy(first)
	if key == "" || key == "AKIDTEST" || first.header.Get("X-Amz-Security-Token") == "" {
		t.Fatalf("signed by %q with token %q: want the role's temporary credentials", key, first.header.Get("X-Amz-Security-Token"))
	}
	// moto tells who the key belongs to (it does not check signatures, so
	// the secret is not needed here).
	who := stsCaller(t, moto, key)
	if !strings.Contains(who, "assumed-role/apigw-sqs/"+sessionName) {
		t.Errorf("moto says key %s is %s, want the assumed role", key, who)
	}
	if again := signedBy(call()); again != key {
		t.Errorf("second call signed by %s, want the cached %s", again, key)
	}
	// Near expiry: asked for again.
	ar := in.(*awsIntegration).creds.(*assumedRole)
	ar.mu.Lock()
	ar.cached.Expires = time.Now().Add(refreshBefore - time.Second)
	ar.mu.Unlock()
	if renewed := signedBy(call()); renewed == key || renewed == "" {
		t.Errorf("near expiry signed by %q, want new credentials", renewed)
	}
}

// stsCaller asks moto's GetCallerIdentity who key is, with boto3.
func stsCaller(t *testing.T, endpoint, key string) string {
	t.Helper()
	cmd := exec.Command("python3", "-c", `
import boto3, sys
print(boto3.client("sts", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id=sys.argv[2],
    aws_secret_access_key="unused", aws_session_token="unused").get_caller_identity()["Arn"])`, endpoint, key)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("get_caller_identity: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestCredentialsArnDenied: a role that does not trust the caller (one
// deployed for apigateway.amazonaws.com) is logged once, and the request
// is signed with the caller's own credentials.
func TestCredentialsArnDenied(t *testing.T) {
	awsEnv(t)
	sts, stsSeen := serviceStub(t, 403, `<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not authorized to perform: sts:AssumeRole</Message></Error></ErrorResponse>`)
	t.Setenv("AWS_ENDPOINT_URL_STS", sts)
	url, got := serviceStub(t, 200, "{}")
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", url)
	var logs bytes.Buffer
	in, err := New(Config{
		Type: "aws", URI: "arn:aws:apigateway:us-east-1:dynamodb:action/PutItem",
		CredentialsArn: "arn:aws:iam::123456789012:role/apigw-ddb",
	}, Env{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	for range 2 {
		if _, err := in.Invoke(context.Background(), &Invocation{Payload: messageEvent(`{}`)}); err != nil {
			t.Fatal(err)
		}
		if s := <-got; s.verifyErr != nil || signedBy(s) != "AKIDTEST" {
			t.Errorf("signed by %q (%v), want the caller's key", signedBy(s), s.verifyErr)
		}
	}
	s := <-stsSeen
	if s.verifyErr != nil || s.id == nil || s.id.Service != "sts" || !strings.Contains(s.body, "Action=AssumeRole") ||
		!strings.Contains(s.body, "RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fapigw-ddb") {
		t.Errorf("STS request: %+v %v %q", s.id, s.verifyErr, s.body)
	}
	select {
	case s := <-stsSeen:
		t.Errorf("STS asked again after a refusal: %q", s.body)
	default:
	}
	if n := strings.Count(logs.String(), "cannot assume credentialsArn"); n != 1 {
		t.Errorf("%d warnings, want 1:\n%s", n, logs.String())
	}
}
