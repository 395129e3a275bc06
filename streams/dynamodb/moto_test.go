package dynamodb

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wsgate/wsgate/internal/testenv"
)

func TestMain(m *testing.M) {
	// Fake credentials for moto; the source reads them through the
	// standard chain like real ones.
	os.Setenv("AWS_ACCESS_KEY_ID", "testing")
	os.Setenv("AWS_SECRET_ACCESS_KEY", "testing")
	os.Setenv("AWS_REGION", "us-east-1")
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	code := m.Run()
	testenv.StopMoto()
	os.Exit(code)
}

// motoEndpoint is the test binary's shared moto_server.
func motoEndpoint(t *testing.T) string { return testenv.Moto(t) }

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
