package gateway

import (
	"net/http"
	"strconv"

	"github.com/wsgate/wsgate/hub"
)

// apiError is one failure of the management API in AWS's shape: the HTTP
// status, the x-amzn-ErrorType header every SDK maps to an exception, and a
// {"message": ...} body. AWS sends 410 with an empty body; wsgate adds the
// message so that every SDK (PHP's included) shows a useful text.
type apiError struct {
	Status  int
	Type    string
	Message string
}

func (e *apiError) Error() string { return e.Type + ": " + e.Message }

// with returns a copy of e with another message.
func (e apiError) with(msg string) *apiError {
	e.Message = msg
	return &e
}

// The management API's failures, as data.
var (
	errGone            = &apiError{http.StatusGone, "GoneException", "The connection does not exist or is closed."}
	errForbidden       = &apiError{http.StatusForbidden, "ForbiddenException", "Forbidden"}
	errPayloadTooLarge = &apiError{http.StatusRequestEntityTooLarge, "PayloadTooLargeException", "Request entity too large: the limit is 131072 bytes."}
	errQueueFull       = &apiError{http.StatusTooManyRequests, "LimitExceededException", "The connection's outbound buffer is full: the client is not reading fast enough."}
	// errLimit: a group join past maxGroupsPerConnection or maxGroups. 429
	// with LimitExceededException is the pair the management API's model
	// defines for its one limit error, so SDKs raise their typed exception
	// (and, by its code, retry a few times, as for a full queue).
	errLimit = &apiError{http.StatusTooManyRequests, "LimitExceededException", "Limit exceeded"}
	// errThrottled: maxManagementRequests are being served.
	errThrottled  = &apiError{http.StatusTooManyRequests, "LimitExceededException", "Too Many Requests"}
	errBadRequest = &apiError{http.StatusBadRequest, "BadRequestException", "Bad request"}
	errNotFound   = &apiError{http.StatusNotFound, "NotFoundException", "No method found matching route"}
	errInternal   = &apiError{http.StatusInternalServerError, "InternalServerErrorException", "Internal server error"}
)

func writeAPIError(w http.ResponseWriter, e *apiError) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("x-amzn-ErrorType", e.Type)
	w.WriteHeader(e.Status)
	_, _ = w.Write(appendJSONMessage(nil, e.Message))
}

// appendJSONMessage appends {"message":"..."}.
func appendJSONMessage(b []byte, msg string) []byte {
	b = append(b, `{"message":`...)
	b = strconv.AppendQuote(b, msg)
	return append(b, '}')
}

// Frames API Gateway sends a client on the socket when a route fails. The
// connection stays open. The byte layout is AWS's, space after the first
// colon included.
const (
	frameInternalError = "Internal server error"
	frameTimeout       = "Endpoint request timed out"
	frameForbidden     = "Forbidden"
	// frameThrottled answers a message (and, as {"message": ...} with 429,
	// a handshake) that found an in-flight bound full: API Gateway's
	// throttling answer is 429 Too Many Requests.
	frameThrottled = "Too Many Requests"
)

func errorFrame(message, connectionID, requestID string) []byte {
	b := make([]byte, 0, 96+len(message))
	b = append(b, `{"message": `...)
	b = strconv.AppendQuote(b, message)
	b = append(b, `, "connectionId":`...)
	b = strconv.AppendQuote(b, connectionID)
	b = append(b, `, "requestId":`...)
	b = strconv.AppendQuote(b, requestID)
	return append(b, '}')
}

// closeReason is why a connection ended; the table is hub's, shared with
// the nodes of a cluster.
type closeReason = hub.CloseReason

var (
	closeNoStatus     = hub.CloseNoStatus
	closeAbnormal     = hub.CloseAbnormal
	closeDeleted      = hub.CloseDeleted
	closeIdle         = hub.CloseIdle
	closeMaxDuration  = hub.CloseMaxDuration
	closeShutdown     = hub.CloseShutdown
	closeProtocol     = hub.CloseProtocol
	closeBinary       = hub.CloseBinary
	closeInvalidUTF8  = hub.CloseInvalidUTF8
	closeSlowConsumer = hub.CloseSlowConsumer
	closeTooBig       = hub.CloseTooBig
	closeWriteTimeout = hub.CloseWriteTimeout
)
