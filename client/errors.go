package client

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/aws/smithy-go"
)

// APIError is a failure the management API answered: the HTTP status, the
// exception name from the x-amzn-ErrorType header (GoneException,
// BadRequestException, ...) and the message of the {"message": ...} body.
// Use errors.As with *APIError, or with smithy.APIError as for SDK errors.
type APIError struct {
	StatusCode int
	Code       string
	Message    string
}

var _ smithy.APIError = (*APIError)(nil)

// Error reads as smithy's GenericAPIError does.
func (e *APIError) Error() string { return fmt.Sprintf("api error %s: %s", e.Code, e.Message) }

// ErrorCode returns the exception name, e.g. "GoneException".
func (e *APIError) ErrorCode() string { return e.Code }

// ErrorMessage returns the message of the response body.
func (e *APIError) ErrorMessage() string { return e.Message }

// ErrorFault reports a 5xx status as the server's fault, anything else as the
// client's.
func (e *APIError) ErrorFault() smithy.ErrorFault {
	if e.StatusCode >= 500 {
		return smithy.FaultServer
	}
	return smithy.FaultClient
}

// newAPIError builds the error of a non-2xx response. The header value may
// carry a suffix after ':' (a URL in AWS's restJson protocol); botocore
// falls back on the status code when there is no name, and so does this.
func newAPIError(status int, h http.Header, body []byte) *APIError {
	code, _, _ := strings.Cut(h.Get("X-Amzn-Errortype"), ":")
	msg := bodyMessage(body) // an empty or foreign body has none
	if code == "" {
		code = strconv.Itoa(status)
	}
	return &APIError{StatusCode: status, Code: code, Message: msg}
}
