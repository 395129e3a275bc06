package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
)

// DefaultRegion is the region used when neither Options.Region nor the
// standard chain (AWS_REGION, the profile's region) names one.
const DefaultRegion = "us-east-1"

// ServiceID names the service in the *smithy.OperationError wrapping every
// error, as the SDK's apigatewaymanagementapi client does.
const ServiceID = "ApiGatewayManagementApi"

// maxResponseBytes bounds what is read of a response body; a page of 1000
// connections is far below it.
const maxResponseBytes = 16 << 20

// ErrInvalidEndpoint is wrapped by New's error when Options.EndpointURL is
// missing or not an http:// or https:// URL with a host.
var ErrInvalidEndpoint = errors.New("invalid endpoint URL")

// Options configures New.
type Options struct {
	// EndpointURL is the management endpoint including the stage, e.g.
	// http://127.0.0.1:8080/dev. Required.
	EndpointURL string
	// Region is the SigV4 signing region. Default: the standard chain's
	// (AWS_REGION, the profile), else DefaultRegion.
	Region string
	// Profile is the shared config profile to load. Default: AWS_PROFILE,
	// else "default".
	Profile string
	// Credentials signs requests. Default: the SDK's standard chain
	// (environment, shared files, SSO, IMDS, ...) for Profile.
	Credentials aws.CredentialsProvider
	// HTTPClient sends requests. Default: the SDK's default HTTP client.
	HTTPClient aws.HTTPClient
	// Logger receives the SDK's warnings (e.g. an IMDS fallback while
	// resolving credentials). Default: the SDK's, which writes to stderr.
	Logger logging.Logger
}

// Client calls wsgate's management API extensions.
type Client struct {
	endpoint *url.URL
	cfg      aws.Config
	signer   *v4.Signer
}

// New resolves region and credentials and returns a Client. Credentials are
// retrieved lazily, on the first request.
func New(ctx context.Context, o Options) (*Client, error) {
	if o.EndpointURL == "" {
		return nil, fmt.Errorf("%w: it is required", ErrInvalidEndpoint)
	}
	u, err := url.Parse(strings.TrimSuffix(o.EndpointURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidEndpoint, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w %q: want http:// or https:// and a host", ErrInvalidEndpoint, o.EndpointURL)
	}
	var load []func(*config.LoadOptions) error
	if o.Profile != "" {
		load = append(load, config.WithSharedConfigProfile(o.Profile))
	}
	if o.Region != "" {
		load = append(load, config.WithRegion(o.Region))
	}
	if o.Credentials != nil {
		load = append(load, config.WithCredentialsProvider(o.Credentials))
	}
	if o.HTTPClient != nil {
		load = append(load, config.WithHTTPClient(o.HTTPClient))
	}
	if o.Logger != nil {
		load = append(load, config.WithLogger(o.Logger))
	}
	cfg, err := config.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return nil, fmt.Errorf("loading AWS config: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	return &Client{endpoint: u, cfg: cfg, signer: v4.NewSigner()}, nil
}

// Config returns the resolved AWS configuration: region, credentials and
// HTTP client.
func (c *Client) Config() aws.Config { return c.cfg }

// call is one management API request: the operation name for errors, the
// method, the path below the stage as escaped segments, a query and a body.
type call struct {
	op       string
	method   string
	segments []string // unescaped; each is escaped on its own
	query    url.Values
	body     []byte
}

// do signs and sends cl and decodes a 2xx JSON answer into out (when out is
// non-nil). Every error is a *smithy.OperationError naming cl.op; a non-2xx
// answer unwraps to *APIError.
func (c *Client) do(ctx context.Context, cl call, out any) error {
	if err := c.send(ctx, cl, out); err != nil {
		return &smithy.OperationError{ServiceID: ServiceID, OperationName: cl.op, Err: err}
	}
	return nil
}

func (c *Client) send(ctx context.Context, cl call, out any) error {
	u := *c.endpoint
	path, raw := u.Path, u.EscapedPath()
	for _, s := range cl.segments {
		path += "/" + s
		raw += "/" + escapeSegment(s)
	}
	u.Path, u.RawPath = path, raw
	if len(cl.query) > 0 {
		u.RawQuery = cl.query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, u.String(), bytes.NewReader(cl.body))
	if err != nil {
		return fmt.Errorf("building request: %w", err)
	}
	if cl.body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	creds, err := c.cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("retrieving credentials: %w", err)
	}
	sum := sha256.Sum256(cl.body)
	if err := c.signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "execute-api", c.cfg.Region, time.Now()); err != nil {
		return fmt.Errorf("signing request: %w", err)
	}
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("sending request: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return fmt.Errorf("reading response: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return newAPIError(resp.StatusCode, resp.Header, body)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("decoding response: %w", err)
	}
	return nil
}

// escapeSegment escapes one path segment. url.PathEscape leaves '=' alone,
// but ids end in '=' and API Gateway's clients send it as %3D.
func escapeSegment(s string) string {
	return strings.ReplaceAll(url.PathEscape(s), "=", "%3D")
}
