package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Management returns the SDK's apigatewaymanagementapi client on the same
// endpoint, region, credentials and HTTP client, for PostToConnection,
// GetConnection and DeleteConnection.
//
// The SDK's model of GoneException, ForbiddenException and
// LimitExceededException has no message member, so the SDK drops the
// {"message"} wsgate sends with them (AWS sends none). This client keeps
// it: such an error's ErrorMessage is the body's message, as botocore and
// so the AWS CLI show it. The SDK's typed exceptions stay reachable with
// errors.As.
func (c *Client) Management() *apigatewaymanagementapi.Client {
	return apigatewaymanagementapi.NewFromConfig(c.cfg, func(o *apigatewaymanagementapi.Options) {
		o.BaseEndpoint = aws.String(c.endpoint.String())
		o.APIOptions = append(o.APIOptions, keepErrorMessage)
	})
}

// errorMessageKey holds, in a call's metadata, the message of an error
// response's body.
type errorMessageKey struct{}

// keepErrorMessage adds two deserialize middlewares: the innermost reads
// an error response's body (and puts it back for the SDK's deserializer),
// the outermost attaches its message to the error the SDK made of it.
func keepErrorMessage(stack *middleware.Stack) error {
	inner := middleware.DeserializeMiddlewareFunc("wsgateReadErrorMessage", func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
		out, md, err := next.HandleDeserialize(ctx, in)
		resp, ok := out.RawResponse.(*smithyhttp.Response)
		if !ok || resp.StatusCode < 300 || resp.Body == nil {
			return out, md, err
		}
		body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
		_ = resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		if rerr == nil {
			if msg := bodyMessage(body); msg != "" {
				md.Set(errorMessageKey{}, msg)
			}
		}
		return out, md, err
	})
	outer := middleware.DeserializeMiddlewareFunc("wsgateKeepErrorMessage", func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
		out, md, err := next.HandleDeserialize(ctx, in)
		var ae smithy.APIError
		if err != nil && errors.As(err, &ae) && ae.ErrorMessage() == "" {
			if msg, ok := md.Get(errorMessageKey{}).(string); ok {
				err = &messageError{APIError: ae, err: err, message: msg}
			}
		}
		return out, md, err
	})
	if err := stack.Deserialize.Add(inner, middleware.After); err != nil {
		return err
	}
	return stack.Deserialize.Add(outer, middleware.Before)
}

// messageError is an SDK error with the message its model dropped.
type messageError struct {
	smithy.APIError // the SDK's exception: code and fault
	err             error
	message         string
}

// Error appends the message to the SDK's text, which ends in "Code: "
// when the message is empty.
func (e *messageError) Error() string { return e.err.Error() + e.message }

// ErrorMessage returns the message of the response body.
func (e *messageError) ErrorMessage() string { return e.message }

// Unwrap returns the SDK's error.
func (e *messageError) Unwrap() error { return e.err }

// bodyMessage returns the message of an AWS JSON error body,
// {"message": ...} or {"Message": ...}.
func bodyMessage(body []byte) string {
	var m struct {
		Message      string `json:"message"`
		MessageUpper string `json:"Message"`
	}
	if json.Unmarshal(body, &m) != nil {
		return ""
	}
	if m.Message != "" {
		return m.Message
	}
	return m.MessageUpper
}
