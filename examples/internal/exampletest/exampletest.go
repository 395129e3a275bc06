// Package exampletest runs the examples end to end: it builds their
// programs, starts moto_server and a real wsgate from the example's own
// wsgate.yaml, and connects real WebSocket clients.
package exampletest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/internal/servertest"
	"github.com/wsgate/wsgate/internal/testenv"
	"github.com/wsgate/wsgate/server"
)

// Build compiles the main packages pkgs (paths as `go build` takes them,
// relative to the test's directory) into bin/ of a new temporary directory
// and returns that directory; each program is named after its package's
// directory, as `go build -o bin/ ./onconnect ...` in a README names it.
// Call it once from TestMain and remove the directory after m.Run.
func Build(pkgs ...string) (string, error) {
	dir, err := os.MkdirTemp("", "wsgate-example-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "bin") + string(os.PathSeparator)
	cmd := exec.Command("go", append([]string{"build", "-o", bin}, pkgs...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("go build %s: %v\n%s", strings.Join(pkgs, " "), err, out)
	}
	return dir, nil
}

// Main is an example's TestMain: it gives the process moto_server's fake
// credentials, builds pkgs once (see Build), sets *dir to the build
// directory, runs the tests and exits.
func Main(m *testing.M, dir *string, pkgs ...string) {
	FakeAWSEnv()
	d, err := Build(pkgs...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*dir = d
	code := m.Run()
	testenv.StopMoto()
	os.RemoveAll(d)
	os.Exit(code)
}

// LoadConfig reads an example's wsgate.yaml and moves it to a free
// loopback port, so tests and a running example never collide.
func LoadConfig(t *testing.T, path string) *server.Config {
	t.Helper()
	cfg, err := server.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen = "127.0.0.1:0"
	cfg.StateDir = t.TempDir() // the local CA, not beside the example's config
	return cfg
}

// Start runs wsgate with cfg until the test ends. Its log is shown when
// the test fails.
func Start(t *testing.T, cfg *server.Config) *server.Server {
	t.Helper()
	srv, _ := servertest.Start(t, cfg)
	return srv
}

// Dial connects a WebSocket client to srv's stage, as a browser would.
func Dial(t *testing.T, srv *server.Server, stage string) *websocket.Conn {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr()+"/"+stage, nil)
	if err != nil {
		if resp != nil {
			body, _ := io.ReadAll(resp.Body)
			t.Fatalf("dial: %v (HTTP %d: %s)", err, resp.StatusCode, body)
		}
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Read returns the next text message c receives, failing the test after
// 30 s without one: a change stream's record goes through moto_server
// (Python) and a function's cold start first, seconds each on a loaded
// machine.
func Read(t *testing.T, c *websocket.Conn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, b, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("reading: %v", err)
	}
	return string(b)
}

// FakeAWSEnv gives the test process (and so wsgate's DynamoDB source)
// credentials moto_server accepts, and no profile of the user's.
func FakeAWSEnv() {
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":         "testing",
		"AWS_SECRET_ACCESS_KEY":     "testing",
		"AWS_REGION":                "us-east-1",
		"AWS_EC2_METADATA_DISABLED": "true",
	} {
		os.Setenv(k, v)
	}
	os.Unsetenv("AWS_PROFILE")
}

// Moto returns the URL of the test binary's moto_server (see testenv.Moto).
func Moto(t *testing.T) string { return testenv.Moto(t) }

// DynamoDB is a client of the DynamoDB at endpoint.
func DynamoDB(endpoint string) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", ""),
	})
}

// CreateTable creates a table with the string partition key key and, when
// stream is set, a NEW_AND_OLD_IMAGES stream, as the examples' SAM
// templates declare them; it is deleted when the test ends.
func CreateTable(t *testing.T, db *dynamodb.Client, name, key string, stream bool) {
	t.Helper()
	in := &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(key), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(key), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	}
	if stream {
		in.StreamSpecification = &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: types.StreamViewTypeNewAndOldImages}
	}
	if _, err := db.CreateTable(context.Background(), in); err != nil {
		t.Fatalf("creating table %s: %v", name, err)
	}
	// The test binary's moto_server outlives one run of the test
	// (-count=N), whose CreateTable would find the table there.
	t.Cleanup(func() {
		if _, err := db.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)}); err != nil {
			t.Errorf("deleting table %s: %v", name, err)
		}
	})
}

// Program is a running example program, read line by line.
type Program struct {
	// Stdin is the program's standard input.
	Stdin  io.WriteCloser
	stdout chan string
	stderr chan string
}

// Run starts the program path with args until the test ends.
func Run(t *testing.T, path string, args ...string) *Program {
	t.Helper()
	cmd := exec.Command(path, args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &Program{Stdin: stdin, stdout: make(chan string, 100), stderr: make(chan string, 100)}
	outs := []struct {
		get func() (io.ReadCloser, error)
		to  chan string
	}{{cmd.StdoutPipe, p.stdout}, {cmd.StderrPipe, p.stderr}}
	for _, o := range outs {
		r, err := o.get()
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			sc := bufio.NewScanner(r)
			for sc.Scan() {
				o.to <- sc.Text()
			}
			close(o.to)
		}()
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return p
}

// Stdout returns the program's next line of standard output.
func (p *Program) Stdout(t *testing.T) string { t.Helper(); return next(t, p.stdout, "stdout") }

// Stderr returns the program's next line of standard error.
func (p *Program) Stderr(t *testing.T) string { t.Helper(); return next(t, p.stderr, "stderr") }

func next(t *testing.T, lines chan string, name string) string {
	t.Helper()
	select {
	case l, ok := <-lines:
		if !ok {
			t.Fatalf("%s ended", name)
		}
		return l
	case <-time.After(30 * time.Second):
		t.Fatalf("no line on %s within 30 s", name)
	}
	return ""
}
