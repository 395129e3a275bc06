package streams

import (
	"slices"
	"strings"
	"time"

	"github.com/wsgate/wsgate/eventfilter"
	"github.com/wsgate/wsgate/integration"
	"github.com/wsgate/wsgate/internal/confcheck"
)

// Defaults and limits of a target, as Lambda's CreateEventSourceMapping
// documents them for DynamoDB streams.
const (
	DefaultBatchSize    = 100
	MaxBatchSize        = 10000
	MaxBatchingWindow   = 300    // seconds
	MaxRetryAttempts    = 10000  // retries after the first attempt
	MaxRecordAgeSeconds = 604800 // one week
)

// Config is one entry of the `streams:` list in the config file: where the
// changes come from and where they go.
type Config struct {
	// Name identifies the stream in logs and metrics. Default: the source
	// type and what it reads: "sqlite:app.db", "postgres:public.orders",
	// "dynamodb:Orders".
	Name string `json:"name,omitempty"`
	// Source is where the changes come from. Required.
	Source SourceConfig `json:"source"`
	// Target is where the records go. Required.
	Target TargetConfig `json:"target"`
	// RunOn names the cluster nodes (node.name) that may run the stream;
	// the others leave it to them. Default: every node that has it in its
	// config campaigns for it. Only with a cluster block.
	RunOn []string `json:"runOn,omitempty"`
}

// TargetConfig is the `target` block of a stream. Exactly one of Group and
// Integration is set. The batching and retry fields apply to Integration
// only and are spelled as in Lambda's CreateEventSourceMapping.
type TargetConfig struct {
	// Group publishes each record, as the JSON of one DynamoDB stream
	// record, to every connection in this group.
	Group string `json:"group,omitempty"`

	// Filter drops records before they reach the target. Default: none,
	// every record is delivered.
	Filter *Filter `json:"filter,omitempty"`
	// FilterCriteria is Lambda's FilterCriteria of an event source
	// mapping: up to 10 filters, each a pattern of at most 4096 bytes
	// matched against the record's JSON (eventName,
	// dynamodb.NewImage.<attribute>.S, ...); a record that matches none
	// is dropped and counted as filtered. It applies together with
	// Filter. Default: none, every record is delivered. The syntax is in
	// package eventfilter.
	FilterCriteria *eventfilter.Criteria `json:"filterCriteria,omitempty"`

	// Integration receives batches as a DynamoDBEvent ({"Records":[...]}),
	// the payload a Lambda function behind a DynamoDB event source mapping
	// receives.
	Integration *integration.Config `json:"integration,omitempty"`

	// BatchSize is the most records per invocation. Default 100, range
	// 1..10000.
	BatchSize int `json:"batchSize,omitempty"`
	// MaximumBatchingWindowInSeconds is how long the source gathers records
	// before invoking with fewer than BatchSize. Default 0 (invoke as soon
	// as records are there), range 0..300.
	MaximumBatchingWindowInSeconds int `json:"maximumBatchingWindowInSeconds,omitempty"`
	// MaximumRetryAttempts is how often a failed batch is retried before it
	// is given up. Default -1 (forever, as Lambda), range -1..10000.
	MaximumRetryAttempts *int `json:"maximumRetryAttempts,omitempty"`
	// MaximumRecordAgeInSeconds gives up records older than this (by their
	// ApproximateCreationDateTime) instead of invoking with them. Default -1
	// (no limit), range -1..604800.
	MaximumRecordAgeInSeconds *int `json:"maximumRecordAgeInSeconds,omitempty"`
	// BisectBatchOnFunctionError splits a failing batch in two and retries
	// each half separately. Splitting does not count as a retry. Default
	// false.
	BisectBatchOnFunctionError bool `json:"bisectBatchOnFunctionError,omitempty"`
	// ReportBatchItemFailures makes the target read a partial batch
	// response ({"batchItemFailures":[{"itemIdentifier":"<SequenceNumber>"}]})
	// from the integration's answer. Default false. The Lambda spelling
	// FunctionResponseTypes: ["ReportBatchItemFailures"] means the same.
	ReportBatchItemFailures bool     `json:"reportBatchItemFailures,omitempty"`
	FunctionResponseTypes   []string `json:"functionResponseTypes,omitempty"`
}

// Filter selects records. A record passes when every set criterion
// matches; an empty Filter passes everything.
type Filter struct {
	// EventNames lists the eventName values that pass: INSERT, MODIFY,
	// REMOVE. Empty: all.
	EventNames []string `json:"eventNames,omitempty"`
	// Keys maps a key attribute name to the values that pass; every listed
	// attribute must be in the record's Keys with one of the values. Values
	// are compared as strings: S as is, N as its decimal text, BOOL as
	// "true" or "false".
	Keys map[string][]string `json:"keys,omitempty"`
	// Attributes is like Keys for any attribute, looked up in NewImage, or
	// in OldImage when the record has no NewImage (REMOVE).
	Attributes map[string][]string `json:"attributes,omitempty"`
}

// Validate checks a stream's config without starting anything. Each
// problem names its field path relative to the stream ("source.type: ...").
func (c *Config) Validate() error {
	var e confcheck.Errors
	e.In("source", c.Source.Validate())
	e.In("target", c.Target.Validate())
	for i, n := range c.RunOn {
		if n == "" || len(n) > 64 {
			e.Addf(confcheck.Index("runOn", i), "%q: want a node name of 1 to 64 characters", n)
		}
	}
	return e.Err()
}

// RunsOn reports whether the node named node may run the stream.
func (c *Config) RunsOn(node string) bool {
	return len(c.RunOn) == 0 || slices.Contains(c.RunOn, node)
}

// DisplayName is Name, or a name derived from the source.
func (c *Config) DisplayName() string {
	if c.Name != "" {
		return c.Name
	}
	switch c.Source.Type {
	case "sqlite":
		return "sqlite:" + c.Source.Path
	case "postgres":
		return "postgres:" + strings.Join(c.Source.Tables, ",")
	default:
		if c.Source.StreamARN != "" {
			return "dynamodb:" + c.Source.StreamARN
		}
		return c.Source.Type + ":" + c.Source.Table
	}
}

// ValidateAll validates every stream and the rules that span streams:
// names are unique, and no SQLite table is captured by two streams (each
// SQLite source trims the change-log rows of its own tables, so two
// sources on one table would take records from each other). Problems are
// named by index: "[0].source.type: ...".
func ValidateAll(cfgs []Config) error {
	var e confcheck.Errors
	names := map[string]int{}
	tables := map[string]string{}
	for i := range cfgs {
		c := &cfgs[i]
		p := confcheck.Index("", i)
		name := c.DisplayName()
		e.In(p, c.Validate())
		if j, ok := names[name]; ok {
			e.Addf(confcheck.Field(p, "name"), "%q used twice (also streams[%d])", name, j)
		}
		names[name] = i
		if c.Source.Type == "sqlite" {
			for _, t := range c.Source.Tables {
				k := c.Source.Path + "\x00" + t
				if other, ok := tables[k]; ok {
					e.Addf(confcheck.Field(p, "source.tables"), "sqlite table %q of %s is already captured by stream %q", t, c.Source.Path, other)
				}
				tables[k] = name
			}
		}
	}
	return e.Err()
}

// MaxPollMillis bounds pollMillis: an hour.
const MaxPollMillis = 3600000

// MaxStatusIntervalSeconds bounds statusIntervalSeconds: half of
// PostgreSQL's default wal_sender_timeout (60 s), which ends a session
// that stays silent longer.
const MaxStatusIntervalSeconds = 30

// Validate checks a source block; problems name fields relative to it.
func (c *SourceConfig) Validate() error {
	var e confcheck.Errors
	e.Range("pollMillis", c.PollMillis, 0, MaxPollMillis)
	e.Range("statusIntervalSeconds", c.StatusIntervalSeconds, 0, MaxStatusIntervalSeconds)
	e.RangeOpt("deliverGraceSeconds", c.DeliverGraceSeconds, 0, MaxDeliverGraceSeconds)
	switch c.Type {
	case "":
		e.Addf("type", "required (sqlite, postgres or dynamodb)")
	case "sqlite":
		if c.Path == "" {
			e.Addf("path", "required for a sqlite source")
		}
		if len(c.Tables) == 0 {
			e.Addf("tables", "required for a sqlite source")
		}
	case "postgres":
		if c.DSN == "" {
			e.Addf("dsn", "required for a postgres source")
		}
		if len(c.Tables) == 0 {
			e.Addf("tables", "required for a postgres source")
		}
	case "dynamodb":
		if c.Table == "" && c.StreamARN == "" {
			e.Addf("table", "a dynamodb source needs table or streamArn")
		}
		switch c.StartingPosition {
		case "", "LATEST", "TRIM_HORIZON":
		case "AT_TIMESTAMP":
			e.Addf("startingPosition", "AT_TIMESTAMP: DynamoDB Streams have no timestamp iterator (Lambda offers it for Kinesis only); want LATEST or TRIM_HORIZON")
		default:
			e.Addf("startingPosition", "%q (want LATEST or TRIM_HORIZON)", c.StartingPosition)
		}
	default:
		e.Addf("type", "unknown source type %q (want sqlite, postgres or dynamodb)", c.Type)
	}
	return e.Err()
}

// Validate checks a target block; problems name fields relative to it.
func (c *TargetConfig) Validate() error {
	var e confcheck.Errors
	switch {
	case c.Group == "" && c.Integration == nil:
		e.Addf("", "needs group or integration")
	case c.Group != "" && c.Integration != nil:
		e.Addf("", "group and integration are exclusive; configure two streams")
	}
	if c.Integration != nil {
		e.In("integration", c.Integration.Validate())
	}
	if c.BatchSize != 0 {
		e.Range("batchSize", c.BatchSize, 1, MaxBatchSize)
	}
	e.Range("maximumBatchingWindowInSeconds", c.MaximumBatchingWindowInSeconds, 0, MaxBatchingWindow)
	e.RangeOpt("maximumRetryAttempts", c.MaximumRetryAttempts, -1, MaxRetryAttempts)
	e.RangeOpt("maximumRecordAgeInSeconds", c.MaximumRecordAgeInSeconds, -1, MaxRecordAgeSeconds)
	for i, t := range c.FunctionResponseTypes {
		if t != "ReportBatchItemFailures" {
			e.Addf(confcheck.Index("functionResponseTypes", i), "unknown %q (want ReportBatchItemFailures)", t)
		}
	}
	if fc := c.FilterCriteria; fc != nil {
		if len(fc.Filters) > eventfilter.MaxFilters {
			e.Addf("filterCriteria.filters", "%d filters (at most %d)", len(fc.Filters), eventfilter.MaxFilters)
		}
		for i, f := range fc.Filters {
			if _, err := eventfilter.Compile(string(f.Pattern)); err != nil {
				e.Addf(confcheck.Index("filterCriteria.filters", i)+".pattern", "%v", err)
			}
		}
	}
	if f := c.Filter; f != nil {
		for i, n := range f.EventNames {
			if n != "INSERT" && n != "MODIFY" && n != "REMOVE" {
				e.Addf(confcheck.Index("filter.eventNames", i), "eventName %q (want INSERT, MODIFY or REMOVE)", n)
			}
		}
	}
	return e.Err()
}

// batchSize is BatchSize with its default.
func (c *TargetConfig) batchSize() int {
	if c.BatchSize <= 0 {
		return DefaultBatchSize
	}
	return c.BatchSize
}

// window is MaximumBatchingWindowInSeconds as a duration.
func (c *TargetConfig) window() time.Duration {
	return confcheck.Seconds(c.MaximumBatchingWindowInSeconds)
}

// retryAttempts is MaximumRetryAttempts with its default, -1 for forever.
func (c *TargetConfig) retryAttempts() int {
	if c.MaximumRetryAttempts == nil {
		return -1
	}
	return *c.MaximumRetryAttempts
}

// maxAge is MaximumRecordAgeInSeconds as a duration, 0 for no limit.
func (c *TargetConfig) maxAge() time.Duration {
	if c.MaximumRecordAgeInSeconds == nil || *c.MaximumRecordAgeInSeconds <= 0 {
		return 0
	}
	return confcheck.Seconds(*c.MaximumRecordAgeInSeconds)
}

// reportItemFailures reports whether partial batch responses are on,
// under either spelling.
func (c *TargetConfig) reportItemFailures() bool {
	return c.ReportBatchItemFailures || slices.Contains(c.FunctionResponseTypes, "ReportBatchItemFailures")
}
