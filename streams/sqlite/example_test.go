package sqlite_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsgate/wsgate/streams"
	"github.com/wsgate/wsgate/streams/sqlite"
)

// printer is a streams.Publisher that prints what a group would receive.
type printer struct{ done context.CancelFunc }

func (p printer) Publish(ctx context.Context, group string, data []byte) error {
	var rec events.DynamoDBEventRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return err
	}
	fmt.Println(group, rec.EventName, rec.Change.SequenceNumber, rec.Change.NewImage["item"].String())
	fmt.Println(rec.EventSourceArn)
	p.done()
	return nil
}

// A SQLite table's changes, published to a group as DynamoDB stream
// records. Any program writing the file is seen; here it is another
// connection of this one.
func Example() {
	dir, _ := os.MkdirTemp("", "wsgate-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "app.db")

	app, _ := sql.Open("sqlite", path)
	defer app.Close()
	app.Exec(`CREATE TABLE orders(id INTEGER PRIMARY KEY, item TEXT)`)

	src, err := sqlite.New(streams.SourceConfig{Type: "sqlite", Path: path, Tables: []string{"orders"}},
		slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Install before writing: changes are captured from then on.
	if err := src.Install(ctx); err != nil {
		fmt.Println(err)
		return
	}
	app.Exec(`INSERT INTO orders VALUES (1, 'tea')`)

	target := streams.NewGroupTarget(streams.TargetConfig{Group: "orders"}, printer{done: cancel})
	if err := src.Run(ctx, target); err != nil {
		fmt.Println(err)
	}
	fmt.Println("delivered:", src.Stats().Delivered)
	// Output:
	// orders INSERT 000000000000000000001 tea
	// arn:aws:dynamodb:us-east-1:000000000000:table/orders/stream/1970-01-01T00:00:00.000
	// delivered: 1
}
