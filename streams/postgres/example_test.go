package postgres_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"

	"github.com/wsgate/wsgate/streams"
	"github.com/wsgate/wsgate/streams/postgres"
)

// Stream the changes of public.orders, as DynamoDB Streams records, until
// interrupted. The server needs wal_level=logical; the role needs the
// REPLICATION attribute (or superuser) to create the slot.
func Example() {
	src, err := postgres.New(streams.SourceConfig{
		Type:   "postgres",
		DSN:    "postgres://wsgate@localhost/shop",
		Tables: []string{"public.orders"},
	}, slog.Default())
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	err = src.Run(ctx, streams.HandlerFunc(func(ctx context.Context, shard string, recs []streams.Record) error {
		for _, r := range recs {
			fmt.Println(shard, r.EventName, r.Change.Keys)
		}
		return nil // accepted: the slot may move past these records
	}))
	if err != nil {
		fmt.Println(err)
	}
}
