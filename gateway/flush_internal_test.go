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
