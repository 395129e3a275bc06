package dynamodb_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"

	"github.com/wsgate/wsgate/streams"
	"github.com/wsgate/wsgate/streams/dynamodb"
)

// Read the stream of the Orders table from its oldest record, keeping the
// position in orders-checkpoint.json so a restart resumes where it stopped.
func Example() {
	src, err := dynamodb.New(streams.SourceConfig{
		Type:             "dynamodb",
		Table:            "Orders",
		Region:           "eu-west-1",
		StartingPosition: "TRIM_HORIZON",
		Checkpoint:       "orders-checkpoint.json",
	}, slog.Default())
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	err = src.Run(ctx, streams.HandlerFunc(func(ctx context.Context, shard string, recs []streams.Record) error {
		for _, r := range recs {
			fmt.Println(shard, r.EventName, r.Change.SequenceNumber)
		}
		return nil // accepted: checkpointed before the next batch
	}))
	if err != nil {
		fmt.Println(err)
	}
}
