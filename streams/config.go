package streams

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/wsgate/wsgate/integration"
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

// Validate checks a stream's config without starting anything.
func (c *Config) Validate() error {
	if err := c.Source.Validate(); err != nil {
		return fmt.Errorf("source: %w", err)
	}
	if err := c.Target.Validate(); err != nil {
		return fmt.Errorf("target: %w", err)
	}
	return nil
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
// sources on one table would take records from each other).
func ValidateAll(cfgs []Config) error {
	names := map[string]bool{}
	tables := map[string]string{}
	for i := range cfgs {
		c := &cfgs[i]
		name := c.DisplayName()
		if err := c.Validate(); err != nil {
			return fmt.Errorf("stream %q: %w", name, err)
		}
		if names[name] {
			return fmt.Errorf("stream %q: name used twice", name)
		}
		names[name] = true
		if c.Source.Type == "sqlite" {
			for _, t := range c.Source.Tables {
				k := c.Source.Path + "\x00" + t
				if other, ok := tables[k]; ok {
					return fmt.Errorf("stream %q: sqlite table %q of %s is already captured by stream %q", name, t, c.Source.Path, other)
				}
				tables[k] = name
			}
		}
	}
	return nil
}

// Validate checks a source block.
func (c *SourceConfig) Validate() error {
	if c.PollMillis < 0 {
		return errors.New("pollMillis must not be negative")
	}
	switch c.Type {
	case "":
		return errors.New("type is required (sqlite, postgres or dynamodb)")
	case "sqlite":
		if c.Path == "" {
			return errors.New("sqlite source needs path")
		}
		if len(c.Tables) == 0 {
			return errors.New("sqlite source needs tables")
		}
	case "postgres":
		if c.DSN == "" {
			return errors.New("postgres source needs dsn")
		}
		if len(c.Tables) == 0 {
			return errors.New("postgres source needs tables")
		}
	case "dynamodb":
		if c.Table == "" && c.StreamARN == "" {
			return errors.New("dynamodb source needs table or streamArn")
		}
		switch c.StartingPosition {
		case "", "LATEST", "TRIM_HORIZON":
		default:
			return fmt.Errorf("startingPosition %q (want LATEST or TRIM_HORIZON)", c.StartingPosition)
		}
	default:
		return fmt.Errorf("unknown source type %q (want sqlite, postgres or dynamodb)", c.Type)
	}
	return nil
}

// Validate checks a target block.
func (c *TargetConfig) Validate() error {
	switch {
	case c.Group == "" && c.Integration == nil:
		return errors.New("needs group or integration")
	case c.Group != "" && c.Integration != nil:
		return errors.New("group and integration are exclusive; configure two streams")
	}
	if c.Integration != nil {
		if err := c.Integration.Validate(); err != nil {
			return fmt.Errorf("integration: %w", err)
		}
	}
	if c.BatchSize < 0 || c.BatchSize > MaxBatchSize {
		return fmt.Errorf("batchSize %d out of range 1..%d", c.BatchSize, MaxBatchSize)
	}
	if c.MaximumBatchingWindowInSeconds < 0 || c.MaximumBatchingWindowInSeconds > MaxBatchingWindow {
		return fmt.Errorf("maximumBatchingWindowInSeconds %d out of range 0..%d", c.MaximumBatchingWindowInSeconds, MaxBatchingWindow)
	}
	if r := c.MaximumRetryAttempts; r != nil && (*r < -1 || *r > MaxRetryAttempts) {
		return fmt.Errorf("maximumRetryAttempts %d out of range -1..%d", *r, MaxRetryAttempts)
	}
	if a := c.MaximumRecordAgeInSeconds; a != nil && (*a < -1 || *a > MaxRecordAgeSeconds) {
		return fmt.Errorf("maximumRecordAgeInSeconds %d out of range -1..%d", *a, MaxRecordAgeSeconds)
	}
	for _, t := range c.FunctionResponseTypes {
		if t != "ReportBatchItemFailures" {
			return fmt.Errorf("functionResponseTypes: unknown %q (want ReportBatchItemFailures)", t)
		}
	}
	if f := c.Filter; f != nil {
		for _, n := range f.EventNames {
			if n != "INSERT" && n != "MODIFY" && n != "REMOVE" {
				return fmt.Errorf("filter: eventName %q (want INSERT, MODIFY or REMOVE)", n)
			}
		}
	}
	return nil
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
	return time.Duration(c.MaximumBatchingWindowInSeconds) * time.Second
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
	return time.Duration(*c.MaximumRecordAgeInSeconds) * time.Second
}

// reportItemFailures reports whether partial batch responses are on,
// under either spelling.
func (c *TargetConfig) reportItemFailures() bool {
	return c.ReportBatchItemFailures || slices.Contains(c.FunctionResponseTypes, "ReportBatchItemFailures")
}
