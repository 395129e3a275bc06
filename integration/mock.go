package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/wsgate/wsgate/internal/jsontext"
)

// mockIntegration answers without any backend: the configured response, or
// an echo of the message body.
type mockIntegration struct {
	response []byte   // marshalled Config.Response; nil means echo
	mapping  *mapping // mapping templates: API Gateway's MOCK type
}

var _ Integration = (*mockIntegration)(nil)

func newMock(cfg Config) (*mockIntegration, error) {
	m := &mockIntegration{}
	if hasMapping(&cfg) {
		mp, err := buildMapping(&cfg)
		if err != nil {
			return nil, err
		}
		m.mapping = mp
		return m, nil
	}
	if cfg.Response != nil {
		b, err := json.Marshal(cfg.Response)
		if err != nil {
			return nil, fmt.Errorf("mock response: %w", err)
		}
		m.response = b
	}
	return m, nil
}

// Invoke returns the configured response, or {"statusCode":200,"body":...}
// carrying inv.Body; with mapping templates, what they render. It never
// blocks; only templates can fail.
func (m *mockIntegration) Invoke(ctx context.Context, inv *Invocation) ([]byte, error) {
	if m.mapping != nil {
		return m.mapping.mock(ctx, inv.Payload)
	}
	if m.response != nil {
		return slices.Clone(m.response), nil // the caller may keep or change it
	}
	const head = `{"statusCode":200,"body":`
	out := make([]byte, 0, len(head)+len(inv.Body)+len(inv.Body)/8+8)
	out = jsontext.AppendString(append(out, head...), inv.Body)
	return append(out, '}'), nil
}

// Close does nothing; mock holds no resources.
func (m *mockIntegration) Close() error { return nil }

// NonBlocking reports whether an integration built from cfg answers without
// waiting on anything (mock: its configured response, an echo, or mapping
// templates, whose rendering is bounded): a caller may invoke it where
// blocking would hold up other work, such as a connection's read turn.
func NonBlocking(cfg *Config) bool { return cfg != nil && cfg.Type == "mock" }
