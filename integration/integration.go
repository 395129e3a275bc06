package integration

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/wsgate/wsgate/internal/confcheck"
)

// Integration invokes one backend.
type Integration interface {
	// Invoke sends inv.Payload to the backend and returns its answer.
	//
	// Errors: a timeout (the integration's own or ctx's deadline) matches
	// errors.Is(err, ErrTimeout); a handler that reported an error is a
	// *FunctionError; anything else (unreachable, HTTP >= 500, malformed
	// answer) is a plain error. Invoke never retries.
	Invoke(ctx context.Context, inv *Invocation) ([]byte, error)

	// Close releases processes, pooled connections and goroutines. In-flight
	// invocations fail. Close is idempotent.
	Close() error
}

// Invocation is one call of an integration.
type Invocation struct {
	// Payload is the event JSON sent to the backend.
	Payload []byte
	// RequestID identifies the call in logs and, for command, is the
	// Lambda-Runtime-Aws-Request-Id the handler sees. May be empty.
	RequestID string
	// Body is the WebSocket message body for MESSAGE events, used by mock
	// to echo without decoding Payload. Empty for other events.
	Body string
	// Wait makes a call that finds its in-flight bounds full wait for a
	// slot, up to the integration's timeout, instead of failing at once
	// with ErrThrottled. The gateway sets it for $disconnect, which has no
	// client to answer and would otherwise be lost.
	Wait bool
}

// ErrTimeout is matched (errors.Is) by the error Invoke returns when the
// backend did not answer in time. API Gateway sends the client the frame
// "Endpoint request timed out" for it.
var ErrTimeout = errors.New("integration timed out")

// FunctionError is a handler's own reported failure: Lambda's
// X-Amz-Function-Error (Unhandled, Handled), a Runtime API
// /invocation/{id}/error post, a crash or a panic.
type FunctionError struct {
	Type    string // errorType, e.g. "Runtime.ExitError" or "errorString"
	Message string // errorMessage
	Payload []byte // the raw error document, when there was one
}

func (e *FunctionError) Error() string {
	if e.Type == "" {
		return "function error: " + e.Message
	}
	return fmt.Sprintf("function error: %s: %s", e.Type, e.Message)
}

// Config is one integration as written in the config file. The field names
// are the user interface; see docs/configuration.md.
type Config struct {
	// Type is the kind: "http", "http_proxy", "aws", "mock", "lambda" or
	// "command". Required.
	Type string `json:"type"`

	// MaxInflight bounds this integration's invocations in flight; past it
	// Invoke fails at once with ErrThrottled. Default 0: no bound of its own
	// (the gateway-wide Env.Inflight still applies). Range 0 to 1000000.
	MaxInflight int `json:"maxInflight,omitempty"`

	// TimeoutMillis bounds one invocation. Default 29000 (API Gateway's
	// default and maximum); 3000 for command (Lambda's default timeout).
	// Range 50 to 900000 (MinTimeoutMillis, MaxTimeoutMillis).
	TimeoutMillis int `json:"timeoutMillis,omitempty"`

	// URI is the endpoint an http integration POSTs the event to, the URL
	// an http_proxy integration forwards the message to, or an aws
	// integration's service action:
	// arn:aws:apigateway:{region}:{service}:action/{Action} or
	// arn:aws:apigateway:{region}:{service}:path/{path}. Required for http,
	// http_proxy and aws.
	URI string `json:"uri,omitempty"`
	// IntegrationMethod is the HTTP method of aws, http and http_proxy
	// requests. Default POST.
	IntegrationMethod string `json:"integrationMethod,omitempty"`
	// CredentialsArn is the IAM role an aws integration assumes (STS
	// AssumeRole, with the standard credential chain or Profile) and signs
	// its requests with; "arn:aws:iam::*:user/*" or none signs with the
	// chain itself.
	CredentialsArn string `json:"credentialsArn,omitempty"`
	// RequestParameters map route.request.header.X,
	// route.request.querystring.X, route.request.body.PATH, context.X,
	// stageVariables.X and 'literals' into integration.request.header.X,
	// integration.request.querystring.X and integration.request.path.X (aws,
	// http, http_proxy).
	RequestParameters map[string]string `json:"requestParameters,omitempty"`

	// Response is what mock answers: a Lambda proxy response document such
	// as {"statusCode":200,"body":"pong"}. Unset, mock echoes the message
	// body with status 200.
	Response any `json:"response,omitempty"`

	// RequestTemplates are the integration request's VTL mapping templates
	// by template key (docs/vtl.md). Mock only for now: the rendered JSON's
	// statusCode picks the integration response.
	RequestTemplates map[string]string `json:"requestTemplates,omitempty"`
	// TemplateSelectionExpression picks a request template: static text,
	// $request.body.PATH or ${request.body.PATH}. Default "\$default"; a
	// key with no template uses the "$default" one, and with neither the
	// message passes through.
	TemplateSelectionExpression string `json:"templateSelectionExpression,omitempty"`
	// IntegrationResponses are the responses by IntegrationResponseKey
	// ("$default", a status code or a /pattern/); their templates render
	// the body of the answer.
	IntegrationResponses map[string]IntegrationResponse `json:"integrationResponses,omitempty"`
	// IntegrationResponseSelectionExpression computes the key that picks
	// the integration response: ${integration.response.statuscode}
	// (default), ${integration.response.header.NAME},
	// ${integration.response.body.PATH} or static text.
	IntegrationResponseSelectionExpression string `json:"integrationResponseSelectionExpression,omitempty"`
	// PassthroughBehavior is what a message with no request template for
	// its key (nor a "$default" one) does: WHEN_NO_MATCH (default) passes
	// it through, WHEN_NO_TEMPLATES passes it only when there are no
	// request templates at all, NEVER never; a refused message gets the
	// frame "Unsupported Media Type".
	PassthroughBehavior string `json:"passthroughBehavior,omitempty"`
	// ContentHandlingStrategy converts the integration request's body:
	// CONVERT_TO_BINARY base64-decodes it, CONVERT_TO_TEXT base64-encodes
	// a binary message. Default: passed as it is.
	ContentHandlingStrategy string `json:"contentHandlingStrategy,omitempty"`

	// MaxConnsPerHost bounds the connections http and lambda open to one
	// backend host (http.Transport.MaxConnsPerHost); requests beyond it wait
	// for a connection within their timeout. Default 256. Range 1 to 65536.
	MaxConnsPerHost int `json:"maxConnsPerHost,omitempty"`

	// Function is the Lambda function name, ARN or alias ARN for lambda.
	Function string `json:"function,omitempty"`
	// Qualifier is the version or alias for lambda. Default none ($LATEST).
	Qualifier string `json:"qualifier,omitempty"`
	// Endpoint overrides the Lambda endpoint for lambda (LocalStack, sam
	// local start-lambda, the runtime interface emulator). Default: real AWS.
	Endpoint string `json:"endpoint,omitempty"`
	// Region for lambda. Default: the gateway's region.
	Region string `json:"region,omitempty"`
	// Profile is the shared-config profile for lambda's credentials.
	// Default: the standard chain (AWS_PROFILE or "default").
	Profile string `json:"profile,omitempty"`

	// Command is the handler program and its arguments for command.
	Command []string `json:"command,omitempty"`
	// Dir is the working directory of the command, and LAMBDA_TASK_ROOT.
	// Default: the directory wsgate runs in.
	Dir string `json:"dir,omitempty"`
	// Concurrency is the most processes command runs at once. Default 1,
	// range 1 to 1024.
	Concurrency int `json:"concurrency,omitempty"`
	// Env adds to (and overrides) the environment of command.
	Env map[string]string `json:"env,omitempty"`
	// FunctionName is AWS_LAMBDA_FUNCTION_NAME for command. Default: the
	// base name of Command[0].
	FunctionName string `json:"functionName,omitempty"`
	// MemorySizeMB is AWS_LAMBDA_FUNCTION_MEMORY_SIZE for command. Default
	// 128, range 128 to 10240 (Lambda's).
	MemorySizeMB int `json:"memorySizeMB,omitempty"`
	// LogLinesPerSecond bounds the output lines of command's processes
	// (all of them together) that reach the log; the rest are dropped and
	// counted in a "function output rate limited" line. Lines are cut at
	// 8 KB. Default 100. Range 1 to 1000000.
	LogLinesPerSecond int `json:"logLinesPerSecond,omitempty"`
}

// Timeout is the configured timeout, or def when none is set.
func (c *Config) Timeout(def time.Duration) time.Duration {
	if c.TimeoutMillis > 0 {
		return confcheck.Millis(c.TimeoutMillis)
	}
	return def
}

// Env is what a command handler needs from the gateway to call it back.
type Env struct {
	// Region is the gateway's region (AWS_REGION for command).
	Region string
	// AccessKeyID and SecretAccessKey are the first configured management
	// credential, given to command handlers so their SDK can sign
	// @connections calls.
	AccessKeyID     string
	SecretAccessKey string
	// SessionToken goes with them when the credential has one: handlers
	// get it as AWS_SESSION_TOKEN, without which their signed calls fail.
	SessionToken string
	// ManagementEndpoint is http://ADDR/{stage}, given to command handlers
	// as WSGATE_MANAGEMENT_ENDPOINT and AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI.
	ManagementEndpoint string
	// Logger receives the integration's logs (and a command's output).
	Logger *slog.Logger
	// HandlerEnv is added to the environment of every handler process
	// wsgate starts (command integrations and local functions), under the
	// config's own env: the place for gateway-wide settings such as a CA
	// bundle. Nil adds nothing.
	HandlerEnv map[string]string
	// Functions are the locally defined functions a lambda integration
	// can name. Nil: every lambda integration calls AWS Lambda.
	Functions *Functions
	// Inflight, when set, is a bound shared by every integration built with
	// this Env (the gateway-wide maxInflight): each invocation holds one of
	// its slots, and Invoke fails with ErrThrottled when none is free.
	Inflight *Limiter
}

// Ranges of the numeric fields (docs/configuration.md). A zero means the
// default and is not range-checked.
const (
	MinTimeoutMillis = 50     // API Gateway's minimum integration timeout
	MaxTimeoutMillis = 900000 // Lambda's maximum function timeout, 15 minutes
	MaxConcurrency   = 1024   // command processes of one integration
	MinMemorySizeMB  = 128    // Lambda's range of function memory
	MaxMemorySizeMB  = 10240
)

// Validate checks a config without starting anything. Each problem names
// its field ("timeoutMillis: must be between 50 and 900000, got 0"); a
// caller files them under the integration's own path.
func (c *Config) Validate() error {
	var e confcheck.Errors
	if c.TimeoutMillis != 0 {
		e.Range("timeoutMillis", c.TimeoutMillis, MinTimeoutMillis, MaxTimeoutMillis)
	}
	if c.Concurrency != 0 {
		e.Range("concurrency", c.Concurrency, 1, MaxConcurrency)
	}
	if c.MemorySizeMB != 0 {
		e.Range("memorySizeMB", c.MemorySizeMB, MinMemorySizeMB, MaxMemorySizeMB)
	}
	e.Range("maxInflight", c.MaxInflight, 0, MaxInflight)
	if c.MaxConnsPerHost != 0 { // only http and lambda open connections
		e.Range("maxConnsPerHost", c.MaxConnsPerHost, 1, MaxConnsPerHost)
	}
	if c.LogLinesPerSecond != 0 {
		e.Range("logLinesPerSecond", c.LogLinesPerSecond, 1, MaxLogLinesPerSecond)
	}
	validateMapping(c, &e)
	switch c.Type {
	case "":
		e.Addf("type", "required (http, http_proxy, aws, mock, lambda or command)")
	case "http", "http_proxy":
		if c.URI == "" {
			e.Addf("uri", "required for an %s integration", c.Type)
		} else if u, err := url.Parse(c.URI); err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
			e.Addf("uri", "%q: want http:// or https:// and a host", c.URI)
		}
		validateMethod(c, &e)
	case "aws":
		if _, err := parseServiceURI(c.URI, c.Region); err != nil {
			e.Addf("uri", "%v", err)
		}
		if c.CredentialsArn != "" && c.CredentialsArn != callerCredentials && !isRoleArn(c.CredentialsArn) {
			e.Addf("credentialsArn", "%q: want an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME) or %s", c.CredentialsArn, callerCredentials)
		}
		validateMethod(c, &e)
	case "mock":
	case "lambda":
		if c.Function == "" {
			e.Addf("function", "required for a lambda integration")
		}
	case "command":
		if len(c.Command) == 0 {
			e.Addf("command", "required for a command integration")
		} else if c.Command[0] == "" {
			e.Addf("command[0]", "the program must not be empty")
		}
		for _, k := range []string{"AWS_LAMBDA_RUNTIME_API", "_LAMBDA_SERVER_PORT"} {
			if _, ok := c.Env[k]; ok {
				// wsgate owns the Runtime API address; _LAMBDA_SERVER_PORT
				// would switch aws-lambda-go to its old RPC mode.
				e.Addf(confcheck.Key("env", k), "must not be set: wsgate sets it")
			}
		}
	default:
		e.Addf("type", "unknown integration type %q (want http, http_proxy, aws, mock, lambda or command)", c.Type)
	}
	return e.Err()
}

// validateMethod checks integrationMethod.
func validateMethod(c *Config, e *confcheck.Errors) {
	switch c.IntegrationMethod {
	case "", "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS":
	default:
		e.Addf("integrationMethod", "%q: want GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS", c.IntegrationMethod)
	}
}

// Ranges of the bounds on in-flight calls, connections and output.
const (
	MaxInflight          = 1000000
	MaxConnsPerHost      = 65536
	MaxLogLinesPerSecond = 1000000
)

// DefaultMaxConnsPerHost is the default of Config.MaxConnsPerHost.
const DefaultMaxConnsPerHost = 256

// MaxPayload is the largest response an integration accepts, in bytes:
// Lambda's 6 MB synchronous payload limit.
const MaxPayload = 6 * 1024 * 1024

// Default timeouts, used when Config.TimeoutMillis is zero.
const (
	DefaultTimeout        = 29 * time.Second // API Gateway's default and maximum
	DefaultCommandTimeout = 3 * time.Second  // Lambda's default function timeout
)

// New validates cfg and builds the integration it describes. Nothing is
// started yet: a command integration starts its first process on the first
// Invoke; lambda loads its credentials lazily, on the first call.
func New(cfg Config, env Env) (Integration, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if env.Logger == nil {
		env.Logger = slog.New(slog.DiscardHandler)
	}
	var (
		in      Integration
		err     error
		timeout = cfg.Timeout(DefaultTimeout)
	)
	switch cfg.Type {
	case "http":
		if hasMapping(&cfg) {
			in, err = newHTTPMapped(cfg, false)
		} else {
			in, err = newHTTP(cfg)
		}
	case "http_proxy":
		in, err = newHTTPMapped(cfg, true)
	case "aws":
		in, err = newAWS(cfg, env)
	case "mock":
		in, err = newMock(cfg)
	case "lambda":
		if fn := env.Functions.lookup(cfg.Function); fn != nil {
			in, err = newLocalLambda(cfg, fn)
		} else {
			in, err = newLambda(cfg, env)
		}
	default: // "command"; Validate rejected anything else
		in, err = newCommand(cfg, env)
		timeout = cfg.Timeout(DefaultCommandTimeout)
	}
	if err != nil {
		return nil, err
	}
	var own *Limiter
	if cfg.MaxInflight > 0 {
		own = NewLimiter(cfg.MaxInflight)
	}
	return withLimits(in, timeout, env.Inflight, own), nil
}

// deadlineOf is when an invocation started now must be answered: the
// integration's timeout, or ctx's deadline when that is sooner.
func deadlineOf(ctx context.Context, timeout time.Duration) time.Time {
	d := time.Now().Add(timeout)
	if cd, ok := ctx.Deadline(); ok && cd.Before(d) {
		return cd
	}
	return d
}

// ctxError is the error for an invocation abandoned because ctx is done: a
// passed deadline is a timeout (ErrTimeout), a cancellation is not.
func ctxError(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", ErrTimeout, ctx.Err())
	}
	return fmt.Errorf("invocation abandoned: %w", ctx.Err())
}
