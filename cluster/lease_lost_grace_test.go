package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgate/wsgate/internal/streamtest"
	"github.com/wsgate/wsgate/internal/testenv"
	"github.com/wsgate/wsgate/streams"
)

// TestLeaseLostDuringGraceCutsTheCall: a leader leaves gracefully while its
// call to the target is held by the backend (the call gets its delivery
// grace, an hour here), and then loses the lease (another writer took the
// key). The loss cuts the call at once, though the run's context had
// ended with the graceful stop's cause already; the batch is not made
// durable by the old run, and the next leader delivers it again (at least
// once).
func TestLeaseLostDuringGraceCutsTheCall(t *testing.T) {
	parallel(t)
	url := startNATS(t)
	hubs := startHubs(t, leaseConfigs(url, 2))
	const key = "stream.lostgrace"
	b := streamtest.NewBackend(t, streamtest.ByKey("id"))
	target := b.Target(t, streams.TargetConfig{})
	one := []streams.Record{{
		EventID: "1", EventName: "INSERT", EventVersion: "1.1", EventSource: "aws:dynamodb", AWSRegion: "us-east-1",
		EventSourceArn: "arn:aws:dynamodb:us-east-1:000000000000:table/t/stream/1970-01-01T00:00:00.000",
		Change: events.DynamoDBStreamRecord{
			Keys:           map[string]events.DynamoDBAttributeValue{"id": events.NewNumberAttribute("1")},
			SequenceNumber: "1", SizeBytes: 1, StreamViewType: "KEYS_ONLY",
		},
	}}
	type term struct {
		runCause, callCause error
		delivered           bool
	}
	var (
		mu    sync.Mutex
		terms = map[string][]term{}
	)
	// run is a source with one record it has not made durable yet: each
	// run offers it once, with an hour's grace.
	run := func(node string, stopping chan<- (<-chan struct{})) func(context.Context) error {
		return func(ctx context.Context) error {
			var callCause error
			err := streams.HandleWithGrace(ctx, time.Hour, streams.HandlerFunc(func(hctx context.Context, shard string, recs []streams.Record) error {
				if stopping != nil {
					stopping <- streams.Stopping(hctx)
				}
				err := target.Handle(hctx, shard, recs)
				callCause = context.Cause(hctx)
				return err
			}), "s", one)
			<-ctx.Done()
			mu.Lock()
			terms[node] = append(terms[node], term{runCause: context.Cause(ctx), callCause: callCause, delivered: err == nil})
			mu.Unlock()
			return nil
		}
	}
	held := b.Hold(t)
	stopping := make(chan (<-chan struct{}), 1)
	lctx, leave := context.WithCancel(context.Background())
	octx, ocancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() {
		held.Release()
		leave()
		ocancel()
		wg.Wait()
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = hubs[0].Lease(lctx, key, run("first", stopping))
	}()
	if keys := held.Arrived(t, 15*time.Second); len(keys) != 1 || keys[0] != "1" {
		t.Fatalf("held batch %q, want record 1", keys)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = hubs[1].Lease(octx, key, run("next", nil))
	}()

	leave() // the graceful stop: the held call has its grace
	<-<-stopping
	select {
	case <-held.Cut():
		t.Fatal("the held call was cut at the graceful stop: it had an hour's grace")
	default:
	}
	// Another writer takes the key: the leader's next renewal (every
	// 400 ms) finds it changed and loses the lease.
	kv := leasesBucket(t, url)
	if _, err := kv.Put(context.Background(), key, []byte(`{"node":"test"}`)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-held.Cut():
	case <-time.After(30 * time.Second):
		t.Fatal("the lease was lost during the grace, but the call to the target was not cut")
	}
	testenv.Eventually(t, 15*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(terms["first"]) == 0 {
			return errors.New("the first run has not returned yet")
		}
		return nil
	})
	mu.Lock()
	first := terms["first"][0]
	mu.Unlock()
	if !errors.Is(first.runCause, context.Canceled) || errors.Is(first.runCause, streams.ErrLeaseLost) {
		t.Errorf("the first run's context ended with %v, want the graceful stop's cause", first.runCause)
	}
	if !errors.Is(first.callCause, streams.ErrLeaseLost) {
		t.Errorf("the held call's context ended with %v, want streams.ErrLeaseLost", first.callCause)
	}
	if first.delivered {
		t.Error("the cut call counted as delivered")
	}
	// The key goes; the other node runs and delivers the batch again.
	if err := kv.Delete(context.Background(), key); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 15*time.Second, func() error {
		if n := b.Count("1"); n != 2 {
			return fmt.Errorf("record 1 reached the backend %d times, want 2 (the cut call, then the next leader's)", n)
		}
		return nil
	})
}

// leasesBucket opens the lease bucket of the cluster on the external NATS
// at url, as another client would.
func leasesBucket(t *testing.T, url string) jetstream.KeyValue {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	kv, err := js.KeyValue(context.Background(), "WSGATE_ext_LEASES")
	if err != nil {
		t.Fatal(err)
	}
	return kv
}
