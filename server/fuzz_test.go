package server_test

import (
	"io"
	"log/slog"
	"testing"

	"github.com/wsgate/wsgate/server"
)

// FuzzParseConfig feeds arbitrary YAML and JSON to the config loader:
// parsing and Validate never panic, a config they accept has no duration
// that overflowed, and it builds (server.Check: the gateway, integrations
// and sources, without listening) without panicking. Build errors, such as
// a missing directory or database file, are fine.
func FuzzParseConfig(f *testing.F) {
	for _, seed := range []string{
		issueExample,
		everyBlock,
		`{"stage":"prod","idleTimeoutSeconds":9300000000,"routes":{"echo":{"integration":{"type":"mock"}}}}`,
		"idleTimeoutSeconds: 604800\nmaxConnectionSeconds: 604800\nsendBufferBytes: 1073741824\n",
		"allowedOrigins: [\"https://*.example.com\", \"http://localhost:*\"]\n",
		"authorizer: { integration: { type: mock }, resultTtlSeconds: 3600 }\n",
		"routes:\n  $default: { integration: { type: lambda, function: f, region: us-east-1, timeoutMillis: 900000 } }\n",
		"routes:\n  sub: { groups: { join: $request.body.group, allow: [\"a.*\"] }, routeResponseSelectionExpression: $default }\n",
		"streams:\n  - source: { type: postgres, dsn: \"postgres://127.0.0.1:1/app\", tables: [public.orders] }\n    target: { integration: { type: mock }, batchSize: 10000, maximumRetryAttempts: -1 }\n",
		"streams:\n  - source: { type: dynamodb, streamArn: \"arn:aws:dynamodb:us-east-1:000000000000:table/T/stream/L\" }\n    target: { group: g, filter: { eventNames: [INSERT] } }\n",
		"streams:\n  - source: { type: sqlite, path: missing.db, tables: [t], pollMillis: 3600000 }\n    target: { group: g }\n",
		"log: { level: debug, format: json }\n",
	} {
		f.Add([]byte(seed))
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	f.Fuzz(func(t *testing.T, text []byte) {
		cfg, err := server.ParseConfig(text)
		if err != nil {
			return
		}
		for name, d := range map[string]int64{
			"idle": int64(cfg.IdleTimeout()), "connection": int64(cfg.MaxConnection()),
			"slow consumer": int64(cfg.SlowConsumer()), "write": int64(cfg.WriteTimeout()),
			"shutdown": int64(cfg.ShutdownTimeout()),
		} {
			if d <= 0 {
				t.Fatalf("accepted config has a %s timeout of %d ns", name, d)
			}
		}
		_ = server.Check(*cfg, logger)
	})
}
