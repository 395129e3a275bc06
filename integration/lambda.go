package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// lambdaIntegration calls the Lambda Invoke API (RequestResponse), on AWS or
// on an emulator of it.
type lambdaIntegration struct {
	function  string
	qualifier *string
	timeout   time.Duration
	client    *lambda.Client
}

var _ Integration = (*lambdaIntegration)(nil)

func newLambda(cfg Config, env Env) (*lambdaIntegration, error) {
	region := cfg.Region
	if region == "" {
		region = env.Region
	}
	opts := []func(*config.LoadOptions) error{
		// The SDK's buildable client, so AWS_CA_BUNDLE keeps working, tuned
		// like http's client.
		config.WithHTTPClient(awshttp.NewBuildableClient().WithTransportOptions(tuneTransport(cfg.MaxConnsPerHost))),
		// Invoke never retries: a retried Invoke runs the handler twice.
		config.WithRetryer(func() aws.Retryer { return aws.NopRetryer{} }),
	}
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	if cfg.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(cfg.Profile))
	}
	// LoadDefaultConfig only reads environment and shared files here;
	// credentials are fetched on the first call.
	awsCfg, err := config.LoadDefaultConfig(context.Background(), opts...)
	if err != nil {
		return nil, fmt.Errorf("lambda integration: loading aws config: %w", err)
	}
	if awsCfg.Region == "" {
		return nil, errors.New("lambda integration: no region (set region, the gateway region or AWS_REGION)")
	}
	l := &lambdaIntegration{
		function: cfg.Function,
		timeout:  cfg.Timeout(DefaultTimeout),
	}
	if cfg.Qualifier != "" {
		l.qualifier = aws.String(cfg.Qualifier)
	}
	l.client = lambda.NewFromConfig(awsCfg, func(o *lambda.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
			o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
				return s.Deserialize.Add(emulatorFunctionError, middleware.After)
			})
		}
	})
	return l, nil
}

// Invoke calls the function synchronously. X-Amz-Function-Error becomes a
// *FunctionError; a service error is a plain error naming the AWS error code.
func (l *lambdaIntegration) Invoke(ctx context.Context, inv *Invocation) ([]byte, error) {
	ctx, cancel := context.WithDeadline(ctx, deadlineOf(ctx, l.timeout))
	defer cancel()
	out, err := l.client.Invoke(ctx, &lambda.InvokeInput{
		FunctionName:   aws.String(l.function),
		Qualifier:      l.qualifier,
		InvocationType: types.InvocationTypeRequestResponse,
		Payload:        inv.Payload,
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctxError(ctx)
		}
		var ae smithy.APIError
		if errors.As(err, &ae) {
			return nil, fmt.Errorf("lambda invoke %s: %s: %s", l.function, ae.ErrorCode(), ae.ErrorMessage())
		}
		return nil, fmt.Errorf("lambda invoke %s: %w", l.function, err)
	}
	if out.FunctionError != nil {
		return nil, parseFunctionError(aws.ToString(out.FunctionError), out.Payload)
	}
	return out.Payload, nil
}

// Close does nothing: the SDK's client has no way to drop its pooled
// connections, which close after the idle timeout.
func (l *lambdaIntegration) Close() error {
	return nil
}

// errorDocument is the error JSON of Lambda and of the Runtime API:
// {"errorMessage","errorType","stackTrace"}, every field optional.
type errorDocument struct {
	ErrorMessage *string         `json:"errorMessage"`
	ErrorType    *string         `json:"errorType"`
	StackTrace   json.RawMessage `json:"stackTrace"` // strings, or aws-lambda-go's {path,line,label}
}

// parseFunctionError builds the *FunctionError for an error payload.
// fallbackType names the error when the payload has no errorType.
func parseFunctionError(fallbackType string, payload []byte) *FunctionError {
	fe := &FunctionError{Type: fallbackType, Payload: payload}
	var doc errorDocument
	if json.Unmarshal(payload, &doc) != nil {
		fe.Message = string(payload)
		return fe
	}
	if doc.ErrorType != nil && *doc.ErrorType != "" {
		fe.Type = *doc.ErrorType
	}
	if doc.ErrorMessage != nil {
		fe.Message = *doc.ErrorMessage
	}
	return fe
}

// emulatorFunctionError repairs the answers of the runtime interface
// emulator, which never sets X-Amz-Function-Error: a handler error comes back
// as 200 and a panic as 502, each with the error document as body and no
// x-amzn-ErrorType. Added only with an Endpoint override, it runs before the
// SDK parses the response and turns such an answer into what Lambda sends:
// 200 with X-Amz-Function-Error: Unhandled. sam local start-lambda guesses
// the same way from the body's shape.
var emulatorFunctionError = middleware.DeserializeMiddlewareFunc("wsgateEmulatorFunctionError",
	func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
		out, md, err := next.HandleDeserialize(ctx, in)
		if err != nil {
			return out, md, err
		}
		resp, ok := out.RawResponse.(*smithyhttp.Response)
		if !ok || resp.Header.Get("X-Amz-Function-Error") != "" || resp.Header.Get("X-Amzn-ErrorType") != "" ||
			resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusBadGateway {
			return out, md, err
		}
		body, rerr := readLimited(resp.Body, resp.ContentLength)
		resp.Body.Close()
		if rerr != nil {
			return out, md, fmt.Errorf("reading emulator response: %w", rerr)
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		if isErrorDocument(body) {
			resp.StatusCode = http.StatusOK
			resp.Header.Set("X-Amz-Function-Error", "Unhandled")
		}
		return out, md, err
	})

// isErrorDocument reports whether b is an object holding exactly the fields
// of an error document with both errorMessage and errorType, the shape
// aws-lambda-go reports and sam local's heuristic looks for.
func isErrorDocument(b []byte) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return false
	}
	_, hasMsg := m["errorMessage"]
	_, hasType := m["errorType"]
	if !hasMsg || !hasType {
		return false
	}
	for k := range m {
		switch k {
		case "errorMessage", "errorType", "stackTrace", "requestId", "cause":
		default:
			return false
		}
	}
	return true
}
