package gateway

import (
	"bytes"
	"fmt"
	"testing"
)

// BenchmarkDataFrame: encoding a message frame, UTF-8 check included
// (once per message, shared by every recipient).
func BenchmarkDataFrame(b *testing.B) {
	for _, n := range []int{100, 128 * 1024} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			payload := bytes.Repeat([]byte("x"), n)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				_ = dataFrame(payload)
			}
		})
	}
}
