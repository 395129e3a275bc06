package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/aws/smithy-go"

	"github.com/wsgate/wsgate/streams"
)

// Defaults for the SourceConfig fields this source reads.
const (
	DefaultPollMillis       = 1000
	DefaultStartingPosition = "LATEST"
)

// discoverEvery is how often DescribeStream looks for new shards while
// nothing else asks for it (a shard finishing does). A variable for tests.
var discoverEvery = 10 * time.Second

// maxGetRecords is the most records one GetRecords call may ask for.
const maxGetRecords = 1000

// backoff spaces retries of failed calls and of a failing handler.
var backoff = streams.Backoff{Min: 100 * time.Millisecond, Max: 30 * time.Second}

var _ streams.Source = (*Source)(nil)

// Source reads one DynamoDB stream. Build it with New.
type Source struct {
	table      string
	streamARN  string
	start      string
	checkpoint string
	poll       time.Duration
	grace      time.Duration // for a call under way at a stop (SourceConfig.DeliverGraceSeconds)

	db     *dynamodb.Client
	ds     *dynamodbstreams.Client
	logger *slog.Logger

	// openStore, when set, gives the checkpoint store for a source id
	// (WithCheckpoints); nil: the checkpoint file.
	openStore func(ctx context.Context, sourceID string) (streams.CheckpointStore, error)

	delivered atomic.Int64
	mu        sync.Mutex
	pending   map[string]time.Time // per running shard: its oldest record read and not yet accepted
	lastErr   string
}

// Option changes a Source built by New.
type Option func(*Source)

// WithCheckpoints keeps the stream's checkpoint in the store open returns
// for the source's id (SourceID) instead of the checkpoint file: a
// cluster passes its JetStream KV store, so the position moves with the
// stream's lease and a runner that lost the lease is fenced (its next save
// fails with streams.ErrFenced and Run stops). Run calls open once per
// run. When that store holds no checkpoint yet and the checkpoint file
// exists, Run imports the file into the store, so a single node turned
// into a cluster resumes where it was.
func WithCheckpoints(open func(ctx context.Context, sourceID string) (streams.CheckpointStore, error)) Option {
	return func(s *Source) { s.openStore = open }
}

// New validates cfg and builds the AWS clients: credentials from the
// standard chain (environment, shared config with cfg.Profile, SSO, IMDS),
// region cfg.Region (or the one in the stream ARN, or the environment's),
// and cfg.Endpoint as BaseEndpoint for both the DynamoDB and the DynamoDB
// Streams client. Table or StreamARN is required; StartingPosition
// defaults to LATEST, PollMillis to 1000 and Checkpoint to
// "wsgate-checkpoint-<table>.json". New does not call AWS.
func New(cfg streams.SourceConfig, logger *slog.Logger, options ...Option) (*Source, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Source{
		table:      cfg.Table,
		streamARN:  cfg.StreamARN,
		start:      cfg.StartingPosition,
		checkpoint: cfg.Checkpoint,
		poll:       time.Duration(cfg.PollMillis) * time.Millisecond,
		grace:      cfg.Grace(),
		pending:    map[string]time.Time{},
	}
	region := cfg.Region
	if s.streamARN != "" {
		// arn:aws:dynamodb:<region>:<account>:table/<table>/stream/<label>
		parts := strings.SplitN(s.streamARN, ":", 6)
		res := strings.Split(parts[len(parts)-1], "/")
		if len(parts) != 6 || len(res) != 4 || res[0] != "table" || res[2] != "stream" {
			return nil, fmt.Errorf("dynamodb source: streamArn %q is not a DynamoDB stream ARN", s.streamARN)
		}
		if region == "" {
			region = parts[3]
		}
		if s.table == "" {
			s.table = res[1]
		}
	}
	if s.table == "" {
		return nil, errors.New("dynamodb source: table or streamArn is required")
	}
	switch s.start {
	case "":
		s.start = DefaultStartingPosition
	case "LATEST", "TRIM_HORIZON":
	default:
		return nil, fmt.Errorf("dynamodb source: startingPosition %q (want LATEST or TRIM_HORIZON)", s.start)
	}
	if g := cfg.DeliverGraceSeconds; g != nil && (*g < 0 || *g > streams.MaxDeliverGraceSeconds) {
		return nil, fmt.Errorf("dynamodb source: deliverGraceSeconds must be between 0 and %d", streams.MaxDeliverGraceSeconds)
	}
	if cfg.PollMillis < 0 {
		return nil, errors.New("dynamodb source: pollMillis must not be negative")
	}
	if s.poll == 0 {
		s.poll = DefaultPollMillis * time.Millisecond
	}
	if s.checkpoint == "" {
		s.checkpoint = "wsgate-checkpoint-" + s.table + ".json"
	}

	var opts []func(*config.LoadOptions) error
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	if cfg.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(cfg.Profile))
	}
	awsCfg, err := config.LoadDefaultConfig(context.Background(), opts...)
	if err != nil {
		return nil, fmt.Errorf("dynamodb source: loading aws config: %w", err)
	}
	if awsCfg.Region == "" {
		return nil, errors.New("dynamodb source: no region: set region in the source or AWS_REGION")
	}
	var endpoint *string
	if cfg.Endpoint != "" {
		endpoint = aws.String(cfg.Endpoint)
	}
	s.db = dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) { o.BaseEndpoint = endpoint })
	s.ds = dynamodbstreams.NewFromConfig(awsCfg, func(o *dynamodbstreams.Options) { o.BaseEndpoint = endpoint })
	s.logger = logger.With("source", "dynamodb", "table", s.table)
	for _, o := range options {
		o(s)
	}
	return s, nil
}

// SourceID names the stream for a cluster's lease: the first 16 hex digits
// of the SHA-256 of "ddb:<stream ARN>". The ARN is the configured
// streamArn, or the table's latest stream from one DescribeTable call.
func (s *Source) SourceID(ctx context.Context) (string, error) {
	arn := s.streamARN
	if arn == "" {
		var err error
		if arn, err = s.describeTable(ctx); err != nil {
			return "", err
		}
	}
	return sourceID(arn), nil
}

// sourceID is the source id of the stream arn.
func sourceID(arn string) string { return streams.HashSourceID("ddb:" + arn) }

// Stats reports progress; safe from any goroutine. OldestPending is the
// oldest among the shards being read.
func (s *Source) Stats() streams.Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	var oldest time.Time
	for _, t := range s.pending {
		if oldest.IsZero() || t.Before(oldest) {
			oldest = t
		}
	}
	return streams.Stats{Delivered: s.delivered.Load(), OldestPending: oldest, LastError: s.lastErr}
}

func (s *Source) setErr(err error) {
	s.mu.Lock()
	s.lastErr = err.Error()
	s.mu.Unlock()
}

// setPending records the creation time of shard's oldest pending record,
// or that it has none (zero).
func (s *Source) setPending(shard string, oldest time.Time) {
	s.mu.Lock()
	if oldest.IsZero() {
		delete(s.pending, shard)
	} else {
		s.pending[shard] = oldest
	}
	s.mu.Unlock()
}

// errorCode is the AWS error code of err, "" when it has none.
func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// isFatal reports errors that retrying will not fix: Run returns them
// marked streams.Permanent.
func isFatal(err error) bool {
	switch errorCode(err) {
	case "ResourceNotFoundException", "AccessDeniedException", "UnrecognizedClientException",
		"ValidationException", "InvalidSignatureException", "MissingAuthenticationTokenException":
		return true
	}
	return false
}

// isThrottle reports the throttling errors of DynamoDB and its streams.
func isThrottle(err error) bool {
	switch errorCode(err) {
	case "ProvisionedThroughputExceededException", "LimitExceededException", "ThrottlingException",
		"RequestLimitExceeded", "TooManyRequestsException":
		return true
	}
	return false
}

// workerDone is what a shard reader reports when it stops.
type workerDone struct {
	shard string
	err   error // fatal error, nil otherwise
}

// Run reads the stream until ctx is done (it returns nil then) or a fatal
// error, marked streams.Permanent: the checkpoint file is corrupt or
// unreadable for lack of permission, the table or stream does not exist,
// the table has no stream, or the credentials are refused. Other failures
// are logged, kept in Stats and retried with backoff. With WithCheckpoints,
// a save refused because another runner took the checkpoint over ends Run
// with an error wrapping streams.ErrFenced (not Permanent).
func (s *Source) Run(ctx context.Context, h streams.Handler) error {
	var ck *checkpoint
	if s.openStore == nil {
		// The checkpoint first: a corrupt one fails at once, even while
		// AWS cannot be reached.
		var err error
		if ck, err = readCheckpoint(ctx, fileStore{s.checkpoint}, s.start); err != nil {
			return fmt.Errorf("dynamodb source: %w", err)
		}
	}
	arn, err := s.resolveStream(ctx)
	if err != nil || ctx.Err() != nil {
		return err
	}
	logger := s.logger.With("stream", arn)
	if ck == nil {
		if ck, err = s.openCheckpoint(ctx, arn, logger); err != nil {
			return fmt.Errorf("dynamodb source: %w", err)
		}
	}
	fresh := ck.useStream(arn, logger)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		// Stop the readers first, then wait for them.
		cancel()
		wg.Wait()
	}()
	done := make(chan workerDone)
	running := map[string]bool{}
	ticker := time.NewTicker(discoverEvery)
	defer ticker.Stop()
	failures := 0
	for {
		listing, err := s.describe(ctx, arn)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil && isFatal(err):
			return streams.Permanent(fmt.Errorf("dynamodb source: describing stream: %w", err))
		case err != nil:
			failures++
			s.setErr(err)
			d := backoff.Jittered(failures)
			logger.Warn("describing stream failed, retrying", "err", err, "backoff", d)
			if streams.Sleep(ctx, d) != nil {
				return nil
			}
			continue
		}
		failures = 0
		// Shards in the first listing of a new checkpoint start at the
		// configured position; any shard seen later starts at its
		// beginning, so nothing written to it is skipped.
		start := "TRIM_HORIZON"
		if fresh {
			start, fresh = s.start, false
		}
		ids := make([]string, 0, len(listing))
		keep := map[string]bool{}
		for _, sh := range listing {
			ids = append(ids, sh.id)
			keep[sh.id] = true
		}
		if err := ck.note(ids, start); err != nil {
			if errors.Is(err, streams.ErrFenced) {
				return fmt.Errorf("dynamodb source: %w", err)
			}
			s.setErr(err)
			logger.Error("saving checkpoint", "err", err)
		}
		if len(listing) > 0 {
			if err := ck.forget(keep); err != nil {
				if errors.Is(err, streams.ErrFenced) {
					return fmt.Errorf("dynamodb source: %w", err)
				}
				logger.Error("saving checkpoint", "err", err)
			}
		}
		for _, sh := range readyShards(listing, ck.finished(), running) {
			running[sh.id] = true
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := s.readShard(ctx, arn, sh, h, ck)
				select {
				case done <- workerDone{sh.id, err}:
				case <-ctx.Done():
				}
			}()
		}
		// Wait for a reason to look again: a shard ended (its children
		// may be ready), the timer, or the end.
		select {
		case <-ctx.Done():
			return nil
		case d := <-done:
			delete(running, d.shard)
			if d.err != nil {
				return fmt.Errorf("dynamodb source: shard %s: %w", d.shard, d.err)
			}
		case <-ticker.C:
		}
	}
}

// openCheckpoint loads the checkpoint from the store of WithCheckpoints,
// which takes it over for this run. When the store has none, the
// checkpoint file, if there is one, is imported.
func (s *Source) openCheckpoint(ctx context.Context, arn string, logger *slog.Logger) (*checkpoint, error) {
	store, err := s.openStore(ctx, sourceID(arn))
	if err != nil {
		return nil, fmt.Errorf("opening checkpoint store: %w", err)
	}
	ck, err := readCheckpoint(ctx, store, s.start)
	if err != nil || len(ck.state.Shards) > 0 || ck.state.StreamARN != "" {
		return ck, err
	}
	// A file that cannot be read or parsed stops the stream as it does
	// on a single node: starting afresh would skip or repeat changes.
	file := fileStore{s.checkpoint}
	b, err := file.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("importing checkpoint %s: %w", file, err)
	}
	if b == nil {
		return ck, nil
	}
	imported, err := newCheckpoint(ctx, file, b, s.start)
	if err != nil {
		return nil, err
	}
	imported.store = store
	imported.mu.Lock()
	err = imported.saveLocked()
	imported.mu.Unlock()
	if err != nil {
		return nil, err
	}
	logger.Info("imported the checkpoint file into the checkpoint store", "file", file.String(), "store", store.String())
	return imported, nil
}

// resolveStream returns the stream ARN: the configured one, or the
// table's LatestStreamArn from DescribeTable, retried with backoff.
func (s *Source) resolveStream(ctx context.Context) (string, error) {
	if s.streamARN != "" {
		return s.streamARN, nil
	}
	for failures := 1; ; failures++ {
		arn, err := s.describeTable(ctx)
		switch {
		case ctx.Err() != nil:
			return "", nil
		case err == nil:
			return arn, nil
		case streams.IsPermanent(err):
			return "", err
		}
		s.setErr(err)
		d := backoff.Jittered(failures)
		s.logger.Warn("describing table failed, retrying", "err", err, "backoff", d)
		if streams.Sleep(ctx, d) != nil {
			return "", nil
		}
	}
}

// describeTable asks DescribeTable once for the table's latest stream ARN.
// Errors retrying cannot heal (no such table, no stream, refused
// credentials) are marked streams.Permanent.
func (s *Source) describeTable(ctx context.Context) (string, error) {
	out, err := s.db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(s.table)})
	switch {
	case err != nil && isFatal(err):
		return "", streams.Permanent(fmt.Errorf("dynamodb source: describing table %s: %w", s.table, err))
	case err != nil:
		return "", fmt.Errorf("dynamodb source: describing table %s: %w", s.table, err)
	}
	arn := aws.ToString(out.Table.LatestStreamArn)
	if arn == "" {
		return "", streams.Permanent(fmt.Errorf("dynamodb source: table %s has no stream: enable one (StreamSpecification StreamEnabled=true, StreamViewType NEW_AND_OLD_IMAGES)", s.table))
	}
	if spec := out.Table.StreamSpecification; spec == nil || !aws.ToBool(spec.StreamEnabled) {
		s.logger.Warn("table stream is disabled; reading what the last stream kept (24 hours)", "stream", arn)
	}
	return arn, nil
}

// describe lists every shard of the stream, following
// LastEvaluatedShardId through the pages.
func (s *Source) describe(ctx context.Context, arn string) ([]shardInfo, error) {
	var all []types.Shard
	var from *string
	for {
		out, err := s.ds.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(arn), ExclusiveStartShardId: from})
		if err != nil {
			return nil, err
		}
		if out.StreamDescription == nil {
			return nil, errors.New("DescribeStream returned no description")
		}
		all = append(all, out.StreamDescription.Shards...)
		from = out.StreamDescription.LastEvaluatedShardId
		if from == nil {
			return shardInfos(all), nil
		}
	}
}
