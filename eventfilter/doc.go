// Package eventfilter implements Lambda's event filtering: the
// FilterCriteria of an event source mapping, whose filters decide which
// records reach the function.
//
// # Model
//
// A Criteria holds up to MaxFilters filters, each a pattern: the JSON text
// of a filter rule, at most MaxPatternBytes long. Compile checks every
// pattern and gives a Matcher; a record passes when it matches at least one
// pattern (the filters are ORed), and a Matcher of no pattern passes
// everything. Records that match no pattern are dropped by the caller, as
// Lambda drops them: the stream moves past them.
//
// A pattern mirrors the shape of the record (for a DynamoDB stream record:
// eventName, dynamodb.Keys, dynamodb.NewImage.<attribute>.S, ...). A key
// whose value is an object descends into the record; a key whose value is
// an array holds the rules for that field, ORed. Every key of a pattern
// must match (AND); "$or" takes a list of patterns of which one must match.
// The rules are those of Amazon EventBridge event patterns, which Lambda
// uses:
//
//	"a": [ "x", 5, true, null ]                exact match (strings exactly, numbers by their text: 300 is not 300.0)
//	"a": [ "" ]                                the empty string
//	"a": [ { "prefix": "us-" } ]               also { "prefix": { "equals-ignore-case": "US-" } }
//	"a": [ { "suffix": ".png" } ]              also { "suffix": { "equals-ignore-case": ".PNG" } }
//	"a": [ { "equals-ignore-case": "alice" } ]
//	"a": [ { "wildcard": "dir/*.png" } ]       * is any run of characters; \* and \\ are literals
//	"a": [ { "anything-but": "x" } ]           also a number, a list of strings or of numbers, or
//	                                           { "prefix" | "suffix" | "equals-ignore-case" | "wildcard": string or list }
//	"a": [ { "numeric": [ ">", 0, "<=", 5 ] } ] =, <, <=, >, >=: one comparison, or a lower and an upper bound
//	"a": [ { "exists": true } ]                the field is present (false: it is not)
//	"a": [ { "cidr": "10.0.0.0/24" } ]         an IPv4 or IPv6 address string inside the prefix
//	"$or": [ { "a": [ "x" ] }, { "b": [ "y" ] } ]
//
// Matching follows EventBridge: a rule sees the field's leaf values (an
// array in the record is flattened, and a rule matches when any element
// does); only leaves exist for "exists" (a DynamoDB attribute {"S": "x"} is
// an object: test "a": {"S": [{"exists": true}]}, not "a": [...]);
// "numeric" matches JSON numbers only (DynamoDB's N values are strings in
// a stream record, so they are matched as strings); every rule but
// "exists": false needs the field to be present.
//
// # Concurrency
//
// A compiled Pattern and Matcher are immutable and safe for concurrent
// use.
package eventfilter
