package dynamodb

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wsgate/wsgate/internal/testenv"
)

// moto is one moto_server shared by the tests of this binary.
var moto struct {
	once     sync.Once
	endpoint string
	cmd      *exec.Cmd
	err      error
}

func TestMain(m *testing.M) {
	// Fake credentials for moto; the source reads them through the
	// standard chain like real ones.
	os.Setenv("AWS_ACCESS_KEY_ID", "testing")
	os.Setenv("AWS_SECRET_ACCESS_KEY", "testing")
	os.Setenv("AWS_REGION", "us-east-1")
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	code := m.Run()
	if moto.cmd != nil {
		moto.cmd.Process.Kill()
		moto.cmd.Wait()
	}
	os.Exit(code)
}

// motoEndpoint starts moto_server on a free loopback port once and returns
// its URL.
func motoEndpoint(t *testing.T) string {
	t.Helper()
	bin := testenv.LookPath(t, "moto_server", "pip install 'moto[server]'")
	moto.once.Do(func() { moto.endpoint, moto.err = startMoto(bin) })
	if moto.err != nil {
		t.Fatalf("starting moto_server: %v", moto.err)
	}
	return moto.endpoint
}

// startMoto runs moto_server on port 0 and reads the port it bound from
// its "Running on http://127.0.0.1:PORT" line, so parallel test binaries
// never race for a port.
func startMoto(bin string) (string, error) {
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", "0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return "", err
	}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	moto.cmd = cmd
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if _, url, ok := strings.Cut(sc.Text(), "Running on "); ok {
				select {
				case found <- strings.TrimSpace(url):
				default:
				}
			}
		}
		close(found)
	}()
	select {
	case url, ok := <-found:
		if !ok {
			return "", errors.New("moto_server exited before it listened")
		}
		return url, nil
	case <-time.After(30 * time.Second):
		return "", errors.New("moto_server did not listen within 30s")
	}
}

// tableClient is a DynamoDB client for moto.
func tableClient(t *testing.T, endpoint string) *dynamodb.Client {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

// createTable makes a table keyed by the string "id" with a
// NEW_AND_OLD_IMAGES stream (or no stream) and returns its stream ARN.
func createTable(t *testing.T, db *dynamodb.Client, name string, stream bool) string {
	t.Helper()
	in := &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	}
	if stream {
		in.StreamSpecification = &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: types.StreamViewTypeNewAndOldImages}
	}
	out, err := db.CreateTable(context.Background(), in)
	if err != nil {
		t.Fatalf("creating table %s: %v", name, err)
	}
	return aws.ToString(out.TableDescription.LatestStreamArn)
}

var tableSeq struct {
	sync.Mutex
	n int
}

// uniqueTable names a table no other test uses.
func uniqueTable(prefix string) string {
	tableSeq.Lock()
	defer tableSeq.Unlock()
	tableSeq.n++
	return fmt.Sprintf("%s%d_%d", prefix, tableSeq.n, time.Now().UnixNano())
}
