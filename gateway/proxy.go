package gateway

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// proxyResponse is a Lambda proxy integration's answer.
type proxyResponse struct {
	StatusCode        int                 `json:"statusCode"`
	Headers           map[string]string   `json:"headers"`
	MultiValueHeaders map[string][]string `json:"multiValueHeaders"`
	Body              string              `json:"body"`
	IsBase64Encoded   bool                `json:"isBase64Encoded"`
	// Groups, a wsgate extension of the $connect response (AWS ignores
	// unknown fields), names groups the new connection joins.
	Groups []string `json:"groups"`
}

// parseProxyResponse decodes an integration's answer. An empty answer (a
// handler returning nothing) is status 200; anything but a JSON object is
// malformed, which API Gateway reports as "Internal server error". A
// missing statusCode counts as 200.
func parseProxyResponse(out []byte) (*proxyResponse, error) {
	out = bytes.TrimSpace(out)
	res := &proxyResponse{StatusCode: 200}
	if len(out) == 0 || bytes.Equal(out, []byte("null")) {
		return res, nil
	}
	if out[0] != '{' {
		return nil, errors.New("malformed Lambda proxy response: not a JSON object")
	}
	res.StatusCode = 0
	if err := json.Unmarshal(out, res); err != nil {
		return nil, fmt.Errorf("malformed Lambda proxy response: %v", err)
	}
	if res.StatusCode == 0 {
		res.StatusCode = 200
	}
	if res.StatusCode < 100 || res.StatusCode > 599 {
		return nil, fmt.Errorf("malformed Lambda proxy response: statusCode %d", res.StatusCode)
	}
	return res, nil
}

// bytes is the body, base64-decoded when the response says so.
func (r *proxyResponse) bytes() ([]byte, error) {
	if r.IsBase64Encoded {
		return base64.StdEncoding.DecodeString(r.Body)
	}
	return []byte(r.Body), nil
}

// errAnswerTooLarge: a two-way route's answer is over the 128 KB message
// limit.
var errAnswerTooLarge = errors.New("route response body over 131072 bytes")

// answer is a two-way route's message to the client: the body, decoded
// when base64. API Gateway's message payload limit is 128 KB, as for a
// POST; a larger answer is an error (the client gets AWS's Internal
// server error frame), never one oversized frame.
func (r *proxyResponse) answer() ([]byte, error) {
	limit := maxMessageBytes
	if r.IsBase64Encoded {
		limit = base64.StdEncoding.EncodedLen(maxMessageBytes) // no decoding of a 6 MB body
	}
	if len(r.Body) > limit {
		return nil, errAnswerTooLarge
	}
	data, err := r.bytes()
	if err != nil {
		return nil, fmt.Errorf("bad base64 body: %v", err)
	}
	if len(data) > maxMessageBytes {
		return nil, errAnswerTooLarge
	}
	return data, nil
}

// marshalEvent encodes an event without escaping <, > and & (AWS does not).
func marshalEvent(ev *Event) ([]byte, error) {
	size := 768
	if ev.Body != nil {
		size += len(*ev.Body) + len(*ev.Body)/8
	}
	return appendEvent(make([]byte, 0, size), ev)
}
