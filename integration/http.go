package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// httpIntegration POSTs the event to a URL and reads a Lambda proxy
// response back, like an API Gateway HTTP_PROXY-style backend that speaks the
// Lambda event format.
type httpIntegration struct {
	uri     string
	timeout time.Duration
	lean    *leanClient  // nil: the URI needs net/http (https, a proxy)
	client  *http.Client // when lean is nil
}

var _ Integration = (*httpIntegration)(nil)

// httpMaxIdlePerHost keeps enough warm connections for the gateway's target
// of 10,000 messages a second through one integration; net/http's default of
// 2 would make most requests dial.
const httpMaxIdlePerHost = 256

// newHTTP builds an http integration; Validate has checked the URI.
func newHTTP(cfg Config) (*httpIntegration, error) {
	h := &httpIntegration{uri: cfg.URI, timeout: cfg.Timeout(DefaultTimeout)}
	if h.lean = newLeanClient(cfg.URI, cfg.MaxConnsPerHost); h.lean == nil {
		h.client = newHTTPClient(cfg.MaxConnsPerHost)
	}
	return h, nil
}

// newHTTPClient is the pooled keep-alive client of http. It has no overall
// timeout: each request carries its own deadline.
func newHTTPClient(maxConns int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tuneTransport(maxConns)(tr)
	tr.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	return &http.Client{
		Transport: tr,
		// A redirect would turn the POST into a GET; the 3xx is the answer.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// tuneTransport sizes the keep-alive pool for one busy backend and bounds
// the connections to it at maxConns (Config.MaxConnsPerHost; 0 is the
// default), so a stalled backend cannot make wsgate open one connection
// per waiting request: requests past the bound wait for a connection,
// within their own deadline.
func tuneTransport(maxConns int) func(*http.Transport) {
	if maxConns == 0 {
		maxConns = DefaultMaxConnsPerHost
	}
	return func(tr *http.Transport) {
		tr.MaxConnsPerHost = maxConns
		tr.MaxIdleConnsPerHost = min(httpMaxIdlePerHost, maxConns)
		tr.MaxIdleConns = 4 * tr.MaxIdleConnsPerHost
		// Shorter than Node.js's 5 s keepAliveTimeout, the shortest common
		// server default, so a pooled connection is not reused just as the
		// backend closes it: a POST on such a connection is not retried.
		tr.IdleConnTimeout = 4 * time.Second
	}
}

// Invoke POSTs inv.Payload and returns the response body. An empty 2xx body
// reads as {"statusCode":200}. A status of 500 or more, or a non-2xx status
// whose body is not a Lambda proxy response, is an error.
func (h *httpIntegration) Invoke(ctx context.Context, inv *Invocation) ([]byte, error) {
	if h.lean != nil {
		return h.invokeLean(ctx, inv)
	}
	ctx, cancel := context.WithDeadline(ctx, deadlineOf(ctx, h.timeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.uri, bytes.NewReader(inv.Payload))
	if err != nil {
		return nil, fmt.Errorf("http integration: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if inv.RequestID != "" {
		req.Header.Set("X-Amzn-RequestId", inv.RequestID)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctxError(ctx)
		}
		return nil, fmt.Errorf("http integration: %w", err)
	}
	defer resp.Body.Close()
	body, err := readLimited(resp.Body, resp.ContentLength)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctxError(ctx)
		}
		return nil, fmt.Errorf("http integration: reading response: %w", err)
	}
	return httpAnswer(resp.StatusCode, resp.Status, body)
}

// invokeLean is Invoke through the lean client, with net/http's client's
// errors: a passed deadline is ErrTimeout, a failed request is
// "Post URL: why", a body over MaxPayload fails reading the response.
func (h *httpIntegration) invokeLean(ctx context.Context, inv *Invocation) ([]byte, error) {
	deadline := deadlineOf(ctx, h.timeout)
	res, err := h.lean.post(ctx, deadline, inv.Payload, inv.RequestID)
	switch {
	case err == nil:
		return httpAnswer(res.code, res.status, res.body)
	case ctx.Err() != nil:
		return nil, ctxError(ctx)
	case isTimeoutErr(err) || !time.Now().Before(deadline):
		return nil, fmt.Errorf("%w: %w", ErrTimeout, context.DeadlineExceeded)
	case errors.Is(err, errTooLarge):
		return nil, fmt.Errorf("http integration: reading response: %w", err)
	}
	return nil, fmt.Errorf("http integration: %w", &url.Error{Op: "Post", URL: h.uri, Err: err})
}

// httpAnswer is the integration's answer for a backend's response.
func httpAnswer(code int, status string, body []byte) ([]byte, error) {
	switch {
	case code >= 500:
		return nil, fmt.Errorf("http integration: backend answered %s", status)
	case code >= 200 && code < 300:
		if len(bytes.TrimSpace(body)) == 0 {
			return []byte(`{"statusCode":200}`), nil
		}
		return body, nil
	case isProxyResponse(body):
		// A backend may send its proxy document with a matching HTTP status
		// (401 with {"statusCode":401}); the document is what counts.
		return body, nil
	default:
		return nil, fmt.Errorf("http integration: backend answered %s", status)
	}
}

// Close drops the pooled connections.
func (h *httpIntegration) Close() error {
	if h.lean != nil {
		h.lean.closeIdle()
		return nil
	}
	h.client.CloseIdleConnections()
	return nil
}

// errTooLarge is returned for a response over MaxPayload.
var errTooLarge = fmt.Errorf("response larger than %d bytes", MaxPayload)

// readLimited reads r to the end, failing beyond MaxPayload. size is the
// announced length (-1 when unknown), used to allocate once.
func readLimited(r io.Reader, size int64) ([]byte, error) {
	if size > MaxPayload {
		return nil, errTooLarge
	}
	var buf bytes.Buffer
	if size > 0 {
		buf.Grow(int(size) + 1) // +1 so the EOF read needs no growth
	}
	n, err := buf.ReadFrom(io.LimitReader(r, MaxPayload+1))
	if err != nil {
		return nil, err
	}
	if n > MaxPayload {
		return nil, errTooLarge
	}
	return buf.Bytes(), nil
}

// isProxyResponse reports whether b is a Lambda proxy response document: a
// JSON object with a numeric statusCode.
func isProxyResponse(b []byte) bool {
	var doc struct {
		StatusCode *float64 `json:"statusCode"`
	}
	return json.Unmarshal(b, &doc) == nil && doc.StatusCode != nil
}
