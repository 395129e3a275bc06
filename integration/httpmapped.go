package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// httpMapped is API Gateway's HTTP_PROXY (the message forwarded as it is)
// and HTTP (the message through mapping templates) integration types:
// requestParameters add headers, query and path parameters; the backend's
// body is the answer (for HTTP, through the integration responses).
type httpMapped struct {
	uri     string
	method  string
	proxy   bool
	mapping *mapping
	client  *http.Client
	timeout time.Duration
}

var _ Integration = (*httpMapped)(nil)

func newHTTPMapped(cfg Config, proxy bool) (*httpMapped, error) {
	mp, err := buildMapping(&cfg)
	if err != nil {
		return nil, err
	}
	method := cfg.IntegrationMethod
	if method == "" {
		method = http.MethodPost
	}
	return &httpMapped{
		uri:     cfg.URI,
		method:  method,
		proxy:   proxy,
		mapping: mp,
		client:  newHTTPClient(cfg.MaxConnsPerHost),
		timeout: cfg.Timeout(DefaultTimeout),
	}, nil
}

// Invoke sends the message (HTTP_PROXY) or the rendered request template
// (HTTP) to the URI with the mapped parameters. The answer is the
// backend's status and body; a status of 500 or more fails as for http.
func (h *httpMapped) Invoke(ctx context.Context, inv *Invocation) ([]byte, error) {
	ctx, cancel := context.WithDeadline(ctx, deadlineOf(ctx, h.timeout))
	defer cancel()
	ir, err := h.mapping.build(ctx, inv.Payload)
	if err != nil {
		return nil, fmt.Errorf("http integration: %w", err)
	}
	u, err := url.Parse(expandPath(h.uri, ir.path))
	if err != nil {
		return nil, fmt.Errorf("http integration: uri: %w", err)
	}
	if len(ir.query) > 0 {
		q := u.Query()
		for k, vs := range ir.query {
			q[k] = vs
		}
		u.RawQuery = q.Encode()
	}
	var body io.Reader
	hasBody := h.method != http.MethodGet && h.method != http.MethodHead
	if hasBody {
		body = bytes.NewReader(ir.body)
	}
	req, err := http.NewRequestWithContext(ctx, h.method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("http integration: %w", err)
	}
	req.Header = ir.header
	if req.Header.Get("Content-Type") == "" && hasBody {
		req.Header.Set("Content-Type", "application/json")
	}
	if inv.RequestID != "" && req.Header.Get("X-Amzn-RequestId") == "" {
		req.Header.Set("X-Amzn-RequestId", inv.RequestID)
	}
	if host := req.Header.Get("Host"); host != "" {
		req.Host = host
		req.Header.Del("Host")
	}
	res, err := send(ctx, h.client, req)
	if err != nil {
		return nil, fmt.Errorf("http integration: %w", err)
	}
	if status, _ := strconv.Atoi(res.Status); status >= 500 && (h.proxy || h.mapping.selected(ir.req, res) == nil) {
		return nil, fmt.Errorf("http integration: backend answered %d %s", status, strings.TrimSpace(http.StatusText(status)))
	}
	// http_proxy has no integration responses: its body passes through.
	return h.mapping.answer(ctx, ir.req, res, h.proxy)
}

// Close drops the pooled connections.
func (h *httpMapped) Close() error {
	h.client.CloseIdleConnections()
	return nil
}
