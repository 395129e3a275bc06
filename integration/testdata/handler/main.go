// Command handler is an aws-lambda-go handler whose behaviour the event
// chooses, for the command and lambda integration tests.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

type event struct {
	Op     string `json:"op"`     // echo (default), error, panic, exit, sleep, env, log, gate
	Body   string `json:"body"`   // echoed back
	Millis int    `json:"millis"` // for sleep
	Dir    string `json:"dir"`    // for gate: where start/end records and the release file live
	Tag    string `json:"tag"`    // for gate: the record name
}

type response struct {
	StatusCode int               `json:"statusCode"`
	Body       string            `json:"body,omitempty"`
	Env        map[string]string `json:"env,omitempty"`
	Context    map[string]string `json:"context,omitempty"`
	PID        int               `json:"pid,omitempty"`
}

func handle(ctx context.Context, ev event) (response, error) {
	switch ev.Op {
	case "error":
		return response{}, errors.New("handler failed on purpose")
	case "panic":
		panic("handler panicked on purpose")
	case "exit":
		os.Exit(3)
	case "sleep":
		time.Sleep(time.Duration(ev.Millis) * time.Millisecond)
		return response{StatusCode: 200, Body: "slept"}, nil
	case "env":
		env := map[string]string{}
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		lc, _ := lambdacontext.FromContext(ctx)
		dl, _ := ctx.Deadline()
		return response{StatusCode: 200, Env: env, Context: map[string]string{
			"functionName":       lambdacontext.FunctionName,
			"functionVersion":    lambdacontext.FunctionVersion,
			"memoryLimitInMB":    fmt.Sprint(lambdacontext.MemoryLimitInMB),
			"logGroupName":       lambdacontext.LogGroupName,
			"logStreamName":      lambdacontext.LogStreamName,
			"awsRequestId":       lc.AwsRequestID,
			"invokedFunctionArn": lc.InvokedFunctionArn,
			"deadline":           dl.UTC().Format(time.RFC3339Nano),
			"traceId":            fmt.Sprint(ctx.Value("x-amzn-trace-id")),
		}}, nil
	case "log":
		lc, _ := lambdacontext.FromContext(ctx)
		fmt.Println("to stdout " + lc.AwsRequestID)
		fmt.Fprintln(os.Stderr, "to stderr "+lc.AwsRequestID)
		return response{StatusCode: 200}, nil
	case "gate":
		// Record the start, wait for the test to release, record the end.
		// Records are files so the test reads them without timing.
		pid := os.Getpid()
		if err := os.WriteFile(filepath.Join(ev.Dir, "start-"+ev.Tag), []byte(fmt.Sprint(pid)), 0o644); err != nil {
			return response{}, err
		}
		for {
			if _, err := os.Stat(filepath.Join(ev.Dir, "release")); err == nil {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		if err := os.WriteFile(filepath.Join(ev.Dir, "end-"+ev.Tag), []byte(fmt.Sprint(pid)), 0o644); err != nil {
			return response{}, err
		}
		return response{StatusCode: 200, PID: pid}, nil
	}
	return response{StatusCode: 200, Body: ev.Body, PID: os.Getpid()}, nil
}

func main() {
	// A slow cold start, when the test asks for one.
	if ms, err := strconv.Atoi(os.Getenv("TEST_INIT_SLEEP_MS")); err == nil {
		time.Sleep(time.Duration(ms) * time.Millisecond)
	}
	lambda.Start(handle)
}
