package gateway

import (
	"strings"
	"testing"
)

// refMatch is the reference for iamMatch: dynamic programming over every
// (pattern prefix, string prefix) pair, obviously correct and polynomial.
func refMatch(pattern, s string) bool {
	// m[j]: pattern[:i] matches s[:j], for the current i.
	m := make([]bool, len(s)+1)
	m[0] = true
	for i := 0; i < len(pattern); i++ {
		next := make([]bool, len(s)+1)
		for j := 0; j <= len(s); j++ {
			switch pattern[i] {
			case '*':
				next[j] = m[j] || (j > 0 && next[j-1])
			case '?':
				next[j] = j > 0 && m[j-1]
			default:
				next[j] = j > 0 && m[j-1] && pattern[i] == s[j-1]
			}
		}
		m = next
	}
	return m[len(s)]
}

const testArn = "arn:aws:execute-api:us-east-1:000000000000:local/dev/$connect"

func TestIAMMatch(t *testing.T) {
	cases := []struct {
		name, pattern, s string
		want             bool
	}{
		{"exact", testArn, testArn, true},
		{"star", "*", testArn, true},
		{"star matches slashes", "arn:aws:execute-api:*", testArn, true},
		{"stage wildcard", "arn:aws:execute-api:us-east-1:000000000000:local/*/$connect", testArn, true},
		{"two levels do not match one", "arn:aws:execute-api:us-east-1:000000000000:local/dev/*/*", testArn, false},
		{"question mark is one byte", "arn:aws:execute-api:us-east-1:000000000000:local/de?/$connect", testArn, true},
		{"question mark is not zero", "arn:aws:execute-api:us-east-1:000000000000:local/dev?/$connect", testArn, false},
		{"star matches empty", "a*b", "ab", true},
		{"trailing stars", "a**", "a", true},
		{"literal star in string", "a*", "a*", true},
		{"star then literal at end", "*X", "aaaX", true},
		{"backtracking", "*ab*ac", "abxabac", true},
		{"no match after stars", "*?*?*X", "abcdef", false},
		{"empty pattern", "", testArn, false},
		{"empty both", "", "", true},
		{"case matters", "ARN:*", testArn, false},
		{"too long", strings.Repeat("*", 2049), testArn, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := iamMatch(tc.pattern, tc.s); got != tc.want {
				t.Fatalf("iamMatch(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
			}
			if len(tc.pattern) <= 2048 && refMatch(tc.pattern, tc.s) != tc.want {
				t.Fatalf("reference disagrees with the case")
			}
		})
	}
}

// TestIAMMatchSteps: patterns that cost a recursive matcher exponential
// time (14-19 s of a core per $connect for "*?*?*?*?*?*?*?*X") take at most
// (len(pattern)+1)*(len(s)+1) steps. It counts steps, never time.
func TestIAMMatchSteps(t *testing.T) {
	for _, pattern := range []string{
		"*?*?*?*?*?*?*?*X",
		strings.Repeat("*?", 40) + "X",
		strings.Repeat("*a", 30) + "b",
		"arn:*:*:*:*:*:*:*:*:*:*:*:*/*/*/*/*/*/*/*/*/*/nope",
	} {
		for _, s := range []string{testArn, strings.Repeat("a", 200), strings.Repeat("arn:aws:", 30)} {
			ok, steps := globMatch(pattern, s)
			if bound := (len(pattern) + 1) * (len(s) + 1); steps > bound {
				t.Errorf("%q against %d bytes: %d steps, more than %d", pattern, len(s), steps, bound)
			}
			if ok != refMatch(pattern, s) {
				t.Errorf("%q against %q: %v, reference says otherwise", pattern, s, ok)
			}
		}
	}
}

// FuzzIAMMatch: the matcher agrees with the reference on small inputs and
// stays within its step bound.
func FuzzIAMMatch(f *testing.F) {
	f.Add("*?*?*?*?*?*?*?*X", testArn)
	f.Add("arn:aws:execute-api:*:*:local/*/$connect", testArn)
	f.Add("*ab*ac", "abxabac")
	f.Add("a?c*", "abc")
	f.Add("", "")
	f.Add("**", "*")
	f.Fuzz(func(t *testing.T, pattern, s string) {
		if len(pattern) > 64 || len(s) > 128 {
			return
		}
		ok, steps := globMatch(pattern, s)
		if want := refMatch(pattern, s); ok != want {
			t.Fatalf("globMatch(%q, %q) = %v, reference %v", pattern, s, ok, want)
		}
		if bound := (len(pattern) + 1) * (len(s) + 1); steps > bound {
			t.Fatalf("globMatch(%q, %q) took %d steps, bound %d", pattern, s, steps, bound)
		}
	})
}
