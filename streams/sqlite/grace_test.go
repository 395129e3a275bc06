package sqlite

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/streamtest"
	"github.com/wsgate/wsgate/streams"
)

// graceForCut is the grace of a run whose call is never answered.
const graceForCut = 200 * time.Millisecond

// A call to the target under way when the run stops gets the grace: the
// batch the backend accepts after the stop began is trimmed, and the next
// run delivers only what came after. A call that outlasts the grace is
// cut, and its batch delivered again.
func TestStopDuringCall(t *testing.T) {
	for _, finish := range []bool{true, false} {
		t.Run(fmt.Sprintf("finish=%v", finish), func(t *testing.T) {
			src, path := newSource(t, `CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT);`, "items")
			if !finish {
				src.grace = graceForCut
			}
			b := streamtest.NewBackend(t, streamtest.ByKey("id"))
			target := b.Target(t, streams.TargetConfig{})
			streamtest.StopDuringCall(t, b, wait, finish, func() (func(), <-chan struct{}) {
				return streamtest.Run(t, func(ctx context.Context) error { return src.Run(ctx, target) })
			}, func(n int) string {
				cli(t, path, fmt.Sprintf(`INSERT INTO items VALUES (%d, 'x');`, n))
				return fmt.Sprint(n)
			})
		})
	}
}
