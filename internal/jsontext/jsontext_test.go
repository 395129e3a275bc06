package jsontext

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzAppendString holds AppendString to encoding/json with HTML escaping
// off: the same bytes for every string.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", `q"b\s/`, "\x00\x1f\b\f\n\r\t", "<&>", "\u2028\u2029", "é€😀", "bad \xff \xed\xa0\x80", "\x7f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		got := AppendString([]byte("x"), s)
		if string(got) != "x"+string(bytes.TrimSuffix(want.Bytes(), []byte("\n"))) {
			t.Fatalf("%q: got %s, want %s", s, got[1:], want.Bytes())
		}
	})
}
