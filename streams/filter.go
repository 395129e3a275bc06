package streams

import (
	"slices"
	"strconv"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsgate/wsgate/eventfilter"
)

// recordFilter is what a target drops records by: wsgate's Filter and
// Lambda's FilterCriteria, both of which a record must pass.
type recordFilter struct {
	simple   *Filter
	criteria eventfilter.Matcher
	// err is an invalid FilterCriteria, possible only when the config
	// skipped Validate; the target's Handle fails with it, permanently.
	err error
}

func newRecordFilter(cfg TargetConfig) recordFilter {
	m, err := cfg.FilterCriteria.Compile()
	return recordFilter{simple: cfg.Filter, criteria: m, err: err}
}

// pass reports whether r, whose JSON encoding is enc, passes both
// filters.
func (f *recordFilter) pass(r *Record, enc []byte) bool {
	return f.simple.Match(r) && f.criteria.MatchJSON(enc)
}

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
