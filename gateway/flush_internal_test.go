package gateway

import (
	"bytes"
	"testing"

	"github.com/wsgate/wsgate/hub"
)

// BenchmarkSendBlock is the publish side of a fan-out alone, per block of
// 32 members whose write turn is held (so nothing is written or listed):
// block is one SendBlock per block, as hub.Memory calls it; each is a Send
// per member, as before SendBlock. ns/op is per block.
func BenchmarkSendBlock(b *testing.B) {
	gw := &Gateway{}
	members := make([]hub.Conn, 32)
	for i := range members {
		members[i] = &conn{gw: gw, writing: true}
	}
	payload := bytes.Repeat([]byte("x"), 100)
	reset := func() {
		for _, m := range members {
			c := m.(*conn)
			clear(c.queue)
			c.queue, c.queued = c.queue[:0], 0
		}
	}
	b.Run("block", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m := hub.NewMessage(payload)
			if d := members[0].(*conn).SendBlock(members, m); d.Delivered != len(members) {
				b.Fatalf("%+v", d)
			}
			reset()
		}
	})
	b.Run("each", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m := hub.NewMessage(payload)
			for _, c := range members {
				if err := c.Send(m); err != nil {
					b.Fatal(err)
				}
			}
			reset()
		}
	})
}

// TestSpellBurst: a flusher's spell is in a burst from the second group
// publish handed off (not the same publish's next block, nor a single
// send) until burstLinger after the last one; in it, the goroutines are
// one fewer than the Ps, never none.
func TestSpellBurst(t *testing.T) {
	const ms = int64(1e6)
	m1, m2, m3 := hub.NewMessage(nil), hub.NewMessage(nil), hub.NewMessage(nil)
	var s spell
	s.begin(4)
	step := func(at int64, burst bool, limit int) {
		t.Helper()
		if got := s.inBurst(at); got != burst {
			t.Fatalf("at %d ms: in burst %v, want %v", at/ms, got, burst)
		}
		if got := s.limit(at); got != limit {
			t.Fatalf("at %d ms: limit %d, want %d", at/ms, got, limit)
		}
	}
	step(0, false, 4)
	s.handedOff(m1, 0)
	step(0, false, 4)
	s.handedOff(m1, 1*ms)  // the same publish's next block
	s.handedOff(nil, 2*ms) // a single send
	step(2*ms, false, 4)
	s.handedOff(m2, 3*ms)
	step(3*ms, true, 3)
	step(3*ms+burstLinger-1, true, 3)
	step(3*ms+burstLinger, false, 4) // over: every P writes again
	s.handedOff(m3, 20*ms)
	step(20*ms, true, 3)

	s.begin(4) // a new spell forgets the old one's publishes
	s.handedOff(m3, 30*ms)
	step(30*ms, false, 4)

	s.begin(1)
	s.handedOff(m1, 0)
	s.handedOff(m2, 0)
	step(0, true, 1)
}
