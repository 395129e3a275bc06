// Package confcheck is how wsgate's config structs validate themselves.
//
// Every problem is collected, so a user fixes a file in one pass, and each
// is named by its field path as written in the file:
//
//	routes["$default"].integration.timeoutMillis: must be between 50 and 900000, got 1000000
//
// Every number is range-checked before it becomes a duration, a buffer size
// or a count: a value that passes `wsgate serve --check` cannot overflow
// where it is used. Seconds and Millis convert config numbers to durations
// and saturate instead of wrapping, a second line behind the range check.
//
// A config type validates like this:
//
//	func (c *Config) Validate() error {
//		var e confcheck.Errors
//		e.Range("idleTimeoutSeconds", c.IdleTimeoutSeconds, 1, MaxIdleTimeoutSeconds)
//		e.In(confcheck.Key("routes", key)+".integration", r.Integration.Validate())
//		return e.Err()
//	}
//
// A nested type's Validate names paths relative to itself ("timeoutMillis:
// ..."); its parent files them under its own path with In.
package confcheck

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Problem is one thing wrong with a config: the field at Path (empty: the
// config itself) and what is wrong with it.
type Problem struct {
	Path string
	Msg  string
}

func (p *Problem) Error() string {
	if p.Path == "" {
		return p.Msg
	}
	return p.Path + ": " + p.Msg
}

// Errors collects a config's problems.
type Errors []error

// Addf files a problem about the field at path.
func (e *Errors) Addf(path, format string, a ...any) {
	*e = append(*e, &Problem{Path: path, Msg: fmt.Sprintf(format, a...)})
}

// Range files a problem unless lo <= v <= hi, and reports whether v is in
// range.
func (e *Errors) Range(path string, v, lo, hi int) bool {
	if v >= lo && v <= hi {
		return true
	}
	e.Addf(path, "must be between %d and %d, got %d", lo, hi, v)
	return false
}

// RangeOpt is Range for an optional field: nil (unset) is in range.
func (e *Errors) RangeOpt(path string, v *int, lo, hi int) bool {
	return v == nil || e.Range(path, *v, lo, hi)
}

// RangeFloat files a problem unless lo <= v <= hi (NaN never is), and
// reports whether v is in range.
func (e *Errors) RangeFloat(path string, v, lo, hi float64) bool {
	if v >= lo && v <= hi {
		return true
	}
	e.Addf(path, "must be between %g and %g, got %g", lo, hi, v)
	return false
}

// In files every problem of err (a Validate result, possibly joined from
// many) under path: the problem at "timeoutMillis" of the error that
// routes["x"].integration's Validate returned is filed at
// routes["x"].integration.timeoutMillis. An error that is no Problem is
// filed at path itself. A nil err files nothing.
func (e *Errors) In(path string, err error) {
	if err == nil {
		return
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, one := range j.Unwrap() {
			e.In(path, one)
		}
		return
	}
	var p *Problem
	if !errors.As(err, &p) {
		*e = append(*e, &Problem{Path: path, Msg: err.Error()})
		return
	}
	sub := p.Path
	switch {
	case sub == "":
		sub = path
	case path == "" || sub[0] == '[':
		sub = path + sub
	default:
		sub = path + "." + sub
	}
	*e = append(*e, &Problem{Path: sub, Msg: p.Msg})
}

// Err joins the problems, nil when there are none.
func (e Errors) Err() error { return errors.Join(e...) }

// Field is path.name, or name at the top level.
func Field(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// Key is path["key"], a map entry.
func Key(path, key string) string { return path + "[" + strconv.Quote(key) + "]" }

// Index is path[i], a list entry.
func Index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// Seconds is n seconds as a Duration. Out of Duration's range (about 292
// years) it saturates at the largest or smallest Duration instead of
// wrapping around to a value of the other sign.
func Seconds(n int) time.Duration { return scale(n, time.Second) }

// Millis is n milliseconds as a Duration, saturating like Seconds.
func Millis(n int) time.Duration { return scale(n, time.Millisecond) }

func scale(n int, unit time.Duration) time.Duration {
	switch {
	case int64(n) > math.MaxInt64/int64(unit):
		return math.MaxInt64
	case int64(n) < math.MinInt64/int64(unit):
		return math.MinInt64
	}
	return time.Duration(n) * unit
}
