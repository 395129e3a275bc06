package streams

import (
	"slices"
	"strconv"

	"github.com/aws/aws-lambda-go/events"
)

// Match reports whether r passes f. A nil Filter passes everything.
func (f *Filter) Match(r *Record) bool {
	if f == nil {
		return true
	}
	if len(f.EventNames) > 0 && !slices.Contains(f.EventNames, r.EventName) {
		return false
	}
	if !matchAttrs(f.Keys, r.Change.Keys) {
		return false
	}
	image := r.Change.NewImage
	if image == nil {
		image = r.Change.OldImage
	}
	return matchAttrs(f.Attributes, image)
}

// matchAttrs reports whether every attribute in want is in have with one
// of the wanted values.
func matchAttrs(want map[string][]string, have map[string]events.DynamoDBAttributeValue) bool {
	for name, values := range want {
		v, ok := have[name]
		if !ok {
			return false
		}
		s, ok := scalarText(v)
		if !ok || !slices.Contains(values, s) {
			return false
		}
	}
	return true
}

// scalarText is the text a filter compares a value by; ok is false for
// types a filter cannot match (B, NULL, sets, lists and maps).
func scalarText(v events.DynamoDBAttributeValue) (string, bool) {
	switch v.DataType() {
	case events.DataTypeString:
		return v.String(), true
	case events.DataTypeNumber:
		return v.Number(), true
	case events.DataTypeBoolean:
		return strconv.FormatBool(v.Boolean()), true
	}
	return "", false
}

// filter returns the records of recs that pass f, recs itself when all do.
func (f *Filter) filter(recs []Record) []Record {
	if f == nil {
		return recs
	}
	var out []Record
	for i := range recs {
		if f.Match(&recs[i]) {
			out = append(out, recs[i])
		}
	}
	if len(out) == len(recs) {
		return recs
	}
	return out
}
