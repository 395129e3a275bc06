package bench

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// Median returns the median of vs (the mean of the middle two when even).
func Median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// WriteMarkdown writes one table per scenario: median, min and max over
// the runs.
func WriteMarkdown(w io.Writer, results []*Result) {
	for _, r := range results {
		fmt.Fprintf(w, "\n### %s\n\n| metric | median | min | max | runs |\n| --- | ---: | ---: | ---: | ---: |\n", r.Scenario)
		for _, name := range r.Names {
			vs := r.Values[name]
			unit := r.Units[name]
			fmt.Fprintf(w, "| %s | %s | %s | %s | %d |\n", name,
				format(Median(vs), unit), format(slices.Min(vs), unit), format(slices.Max(vs), unit), len(vs))
		}
		if t := r.Table; t != nil {
			writeTable(w, t)
		}
		for _, e := range r.Errors {
			fmt.Fprintf(w, "\nerror: %s\n", e)
		}
		for _, f := range r.Fails {
			fmt.Fprintf(w, "\nFAIL: %s\n", f)
		}
	}
}

func format(v float64, unit string) string {
	switch {
	case unit == "/s" || unit == "B":
		return fmt.Sprintf("%.0f %s", v, unit)
	case unit == "":
		if v == float64(int64(v)) {
			return fmt.Sprintf("%.0f", v)
		}
		return fmt.Sprintf("%.3g", v)
	default:
		return fmt.Sprintf("%.3g %s", v, unit)
	}
}

func writeTable(w io.Writer, t *Table) {
	fmt.Fprintf(w, "\n| %s |\n|", strings.Join(t.Columns, " | "))
	for i := range t.Columns {
		if i == 0 {
			fmt.Fprint(w, " --- |")
		} else {
			fmt.Fprint(w, " ---: |")
		}
	}
	fmt.Fprintln(w)
	for _, row := range t.Rows {
		fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
	}
	for _, n := range t.Notes {
		fmt.Fprintf(w, "\n%s\n", n)
	}
}
