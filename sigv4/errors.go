package sigv4

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// Reason says why a request failed verification. It is stable and meant for
// logs and metrics; the AWS-facing shape is in Error's other fields.
type Reason uint8

// The reasons Verify reports. Each maps to one row of the AWS error table
// (see newError).
const (
	// ReasonMissingAuth: neither an Authorization header nor X-Amz-* query
	// parameters.
	ReasonMissingAuth Reason = iota + 1
	// ReasonIncompleteSignature: the Authorization header or the presigned
	// query is malformed or lacks a required part.
	ReasonIncompleteSignature
	// ReasonUnknownKey: the access key id is not in the credential store.
	ReasonUnknownKey
	// ReasonBadToken: the session token is missing, unexpected or wrong for
	// the access key.
	ReasonBadToken
	// ReasonMismatch: the signature does not match the request.
	ReasonMismatch
	// ReasonExpired: the signing time is too old, or a presigned URL expired.
	ReasonExpired
	// ReasonNotYetCurrent: the signing time is too far in the future.
	ReasonNotYetCurrent
	// ReasonWrongScope: the credential scope's date, region, service or
	// terminator is not the expected one.
	ReasonWrongScope
	// ReasonContentHashMismatch: x-amz-content-sha256 does not match the body,
	// or names a payload mode the verifier does not accept.
	ReasonContentHashMismatch
	// ReasonBodyTooLarge: the body is over Verifier.MaxBodyBytes.
	ReasonBodyTooLarge
	// ReasonBodyUnreadable: reading the body failed (client went away).
	ReasonBodyUnreadable
)

var reasonNames = [...]string{
	ReasonMissingAuth:         "missing_auth",
	ReasonIncompleteSignature: "incomplete_signature",
	ReasonUnknownKey:          "unknown_key",
	ReasonBadToken:            "bad_token",
	ReasonMismatch:            "signature_mismatch",
	ReasonExpired:             "expired",
	ReasonNotYetCurrent:       "not_yet_current",
	ReasonWrongScope:          "wrong_scope",
	ReasonContentHashMismatch: "content_hash_mismatch",
	ReasonBodyTooLarge:        "body_too_large",
	ReasonBodyUnreadable:      "body_unreadable",
}

// String returns a short snake_case name, e.g. "signature_mismatch".
func (r Reason) String() string {
	if int(r) < len(reasonNames) && reasonNames[r] != "" {
		return reasonNames[r]
	}
	return "reason_" + strconv.Itoa(int(r))
}

// errorShape is one row of the AWS error table: what API Gateway answers for
// a reason. Messages that carry request data are completed by the caller.
type errorShape struct {
	status    int
	errorType string
	message   string // fixed message, or "" when built per request
}

// errorTable maps each Reason to API Gateway's answer (spec/sigv4.md §8.2).
// Every SigV4 failure is a 403; only the body-size and body-read failures,
// which are not signature failures, use other statuses.
var errorTable = [...]errorShape{
	ReasonMissingAuth:         {http.StatusForbidden, "MissingAuthenticationTokenException", "Missing Authentication Token"},
	ReasonIncompleteSignature: {http.StatusForbidden, "IncompleteSignatureException", ""},
	ReasonUnknownKey:          {http.StatusForbidden, "UnrecognizedClientException", "The security token included in the request is invalid."},
	ReasonBadToken:            {http.StatusForbidden, "UnrecognizedClientException", "The security token included in the request is invalid."},
	ReasonMismatch:            {http.StatusForbidden, "InvalidSignatureException", mismatchMessage},
	ReasonExpired:             {http.StatusForbidden, "InvalidSignatureException", ""},
	ReasonNotYetCurrent:       {http.StatusForbidden, "InvalidSignatureException", ""},
	ReasonWrongScope:          {http.StatusForbidden, "InvalidSignatureException", ""},
	ReasonContentHashMismatch: {http.StatusForbidden, "InvalidSignatureException", ""},
	ReasonBodyTooLarge:        {http.StatusRequestEntityTooLarge, "PayloadTooLargeException", "Request Too Long"},
	ReasonBodyUnreadable:      {http.StatusBadRequest, "BadRequestException", "Could not read the request body"},
}

// mismatchMessage is AWS's text for a wrong signature, word for word.
const mismatchMessage = "The request signature we calculated does not match the signature you provided. " +
	"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."

// Error is a verification failure as AWS reports it: HTTP status,
// x-amzn-ErrorType and message. Verify returns only *Error values.
type Error struct {
	StatusCode int    // HTTP status, 403 for every signature failure
	ErrorType  string // x-amzn-ErrorType, e.g. "InvalidSignatureException"
	Message    string // the "message" of the JSON body
	Reason     Reason // stable classification for logs and metrics
}

// Error returns "ErrorType: Message".
func (e *Error) Error() string { return e.ErrorType + ": " + e.Message }

// Is makes errors.Is(err, &Error{Reason: r}) match any *Error with reason r.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Reason == e.Reason
}

// WriteHTTP answers with e as API Gateway does: the status, an
// x-amzn-ErrorType header, a JSON body {"message": ...} and a Date header
// (aws-sdk-go-v2 reads Date to correct clock skew, so it must be right).
func (e *Error) WriteHTTP(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	// AWS spells it x-amzn-ErrorType; set the map key directly to keep that
	// spelling on the wire (header names are case-insensitive anyway).
	h["x-amzn-ErrorType"] = []string{e.ErrorType}
	if h.Get("Date") == "" {
		h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	}
	body, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{e.Message})
	w.WriteHeader(e.StatusCode)
	_, _ = w.Write(body)
}

// newError returns the table's error for r, with msg replacing the table
// message when the table has none (or when msg is not empty).
func newError(r Reason, msg string) *Error {
	s := errorTable[r]
	if msg == "" {
		msg = s.message
	}
	return &Error{StatusCode: s.status, ErrorType: s.errorType, Message: msg, Reason: r}
}
