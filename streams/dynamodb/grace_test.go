package dynamodb

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/wsgate/wsgate/internal/streamtest"
	"github.com/wsgate/wsgate/streams"
)

// A call to the target under way when the run stops gets the grace: the
// batch the backend accepts after the stop began is checkpointed before
// Run returns, and the next run delivers only what came after. A call
// that outlasts the grace is cut, and its batch delivered again.
func TestStopDuringCall(t *testing.T) {
	endpoint := motoEndpoint(t)
	db := tableClient(t, endpoint)
	for _, finish := range []bool{true, false} {
		t.Run(fmt.Sprintf("finish=%v", finish), func(t *testing.T) {
			table := uniqueTable("grace")
			createTable(t, db, table, true)
			b := streamtest.NewBackend(t, streamtest.ByKey("id"))
			target := b.Target(t, streams.TargetConfig{})
			cfg := streams.SourceConfig{Type: "dynamodb", Table: table, Endpoint: endpoint, Region: "us-east-1",
				StartingPosition: "TRIM_HORIZON", Checkpoint: filepath.Join(t.TempDir(), "ckpt.json"), PollMillis: 20}
			streamtest.StopDuringCall(t, b, waitFor, finish, func() (func(), <-chan struct{}) {
				src, err := New(cfg, testLogger())
				if err != nil {
					t.Fatal(err)
				}
				if !finish {
					src.grace = 200 * time.Millisecond
				}
				return streamtest.Run(t, func(ctx context.Context) error { return src.Run(ctx, target) })
			}, func(n int) string {
				id := fmt.Sprint(n)
				if _, err := db.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: key(id)}); err != nil {
					t.Fatal(err)
				}
				return id
			})
		})
	}
}
