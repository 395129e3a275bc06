package template

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/wsgate/wsgate/internal/testenv"
)

func TestMain(m *testing.M) {
	// No credentials in the environment: NewDynamoDBClient must fall back
	// to local ones that moto accepts.
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"} {
		os.Unsetenv(k)
	}
	os.Setenv("AWS_CONFIG_FILE", os.DevNull)
	os.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	code := m.Run()
	testenv.StopMoto()
	os.Exit(code)
}

// TestCreateTables creates a template's table, with its index and stream,
// in moto_server; a second run leaves the existing table alone.
func TestCreateTables(t *testing.T) {
	endpoint := testenv.Moto(t)
	f, err := Read(filepath.Join("testdata", "sam-websocketapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// A table name of this test's own in the shared moto.
	res, err := Translate(f, Options{DynamoDBEndpoint: endpoint})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Tables) != 1 {
		t.Fatalf("tables: %+v", res.Tables)
	}
	// Named per run: the test binary's moto_server keeps the table
	// through the next run (-count=N), which would find it there.
	name := fmt.Sprintf("template_test_orders_%d", time.Now().UnixNano())
	res.Tables[0].Name = name
	ctx := context.Background()
	db, err := NewDynamoDBClient(ctx, endpoint, "us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	created, err := CreateTables(ctx, db, res.Tables)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(created, []string{name}) {
		t.Fatalf("created %v", created)
	}
	out, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	d := out.Table
	if len(d.GlobalSecondaryIndexes) != 1 || aws.ToString(d.GlobalSecondaryIndexes[0].IndexName) != "byCustomer" {
		t.Errorf("indexes: %+v", d.GlobalSecondaryIndexes)
	}
	if d.StreamSpecification == nil || !aws.ToBool(d.StreamSpecification.StreamEnabled) ||
		d.StreamSpecification.StreamViewType != "NEW_AND_OLD_IMAGES" || aws.ToString(d.LatestStreamArn) == "" {
		t.Errorf("stream: %+v %v", d.StreamSpecification, aws.ToString(d.LatestStreamArn))
	}
	created, err = CreateTables(ctx, db, res.Tables)
	if err != nil || len(created) != 0 {
		t.Fatalf("second run created %v, %v", created, err)
	}
}
