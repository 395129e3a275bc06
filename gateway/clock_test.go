package gateway_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/internal/testenv"
)

// swept waits until the sweeper has made two more rounds: one whole
// round after the call.
func swept(t *testing.T, tg *testGateway) {
	t.Helper()
	n := tg.gw.Sweeps() + 2
	testenv.Eventually(t, readWait, func() error {
		if got := tg.gw.Sweeps(); got < n {
			return fmt.Errorf("%d sweeps, want %d", got, n)
		}
		return nil
	})
}

// getConnection is GetConnection's connectedAt and lastActiveAt.
func getConnection(t *testing.T, tg *testGateway, id string) (connected, active time.Time) {
	t.Helper()
	out, err := tg.mgmt().GetConnection(context.Background(), &apigatewaymanagementapi.GetConnectionInput{ConnectionId: aws.String(id)})
	if err != nil {
		t.Fatalf("GetConnection: %v", err)
	}
	return *out.ConnectedAt, *out.LastActiveAt
}

// A step of the wall clock moves neither the idle timeout nor the maximum
// duration: three hours forward (past both, 10 minutes and 2 hours) ends
// no connection, and GET @connections still reports the connection time
// it first did, while activity after the step is reported on the stepped
// clock. (A step back: TestIdleAndMaxDuration.)
func TestWallStepForward(t *testing.T) {
	be := newBackend(t, nil)
	cfg := baseConfig()
	cfg.Routes["whoami"] = be.whoamiRoute()
	tg := startGateway(t, cfg)
	c := tg.dial(t, nil)
	id := whoami(t, c)
	connected, _ := getConnection(t, tg, id)

	const step = 3 * time.Hour
	t.Cleanup(gateway.StepWall(step))
	swept(t, tg)
	if got := whoami(t, c); got != id { // still open, and active on the stepped clock
		t.Fatalf("whoami %q, want %q", got, id)
	}
	swept(t, tg)
	again, active := getConnection(t, tg, id)
	if !again.Equal(connected) {
		t.Fatalf("connectedAt %v after the step, %v before", again, connected)
	}
	if active.Before(connected.Add(step)) {
		t.Fatalf("lastActiveAt %v after the step: not on the stepped clock (connectedAt %v)", active, connected)
	}
}
