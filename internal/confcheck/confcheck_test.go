package confcheck

import (
	"errors"
	"math"
	"testing"
	"time"
)

func TestSecondsSaturates(t *testing.T) {
	cases := []struct {
		name string
		got  time.Duration
		want time.Duration
	}{
		{"seconds", Seconds(600), 10 * time.Minute},
		{"millis", Millis(50), 50 * time.Millisecond},
		{"negative", Seconds(-2), -2 * time.Second},
		// 9.3e9 s wraps a time.Duration negative when multiplied naively.
		{"past Duration", Seconds(9300000000), math.MaxInt64},
		{"far past", Seconds(math.MaxInt), math.MaxInt64},
		{"far below", Seconds(math.MinInt), math.MinInt64},
		{"millis past", Millis(math.MaxInt), math.MaxInt64},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Fatalf("got %v, want %v", tc.got, tc.want)
			}
		})
	}
}

func TestPaths(t *testing.T) {
	var inner Errors
	inner.Range("timeoutMillis", 10, 50, 900000)
	inner.Addf("", "needs group or integration")
	inner.Addf(Index("functionResponseTypes", 1), "unknown")
	var list Errors
	list.In(Index("", 2), errors.New("plain"))
	var e Errors
	e.In(Field(Key("routes", "$default"), "integration"), inner.Err())
	e.In("streams", list.Err())
	e.In("x", nil)
	want := `routes["$default"].integration.timeoutMillis: must be between 50 and 900000, got 10` + "\n" +
		`routes["$default"].integration: needs group or integration` + "\n" +
		`routes["$default"].integration.functionResponseTypes[1]: unknown` + "\n" +
		`streams[2]: plain`
	if got := e.Err().Error(); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if (Errors{}).Err() != nil {
		t.Fatal("no problems must be a nil error")
	}
}
