package gateway

import (
	"errors"
	"net/http"

	"github.com/wsgate/wsgate/integration"
)

// failure is the status, outcome and message the client gets for an
// integration error the gateway has no case of its own for: API Gateway's
// own answer when a non-proxy integration gave one (415 Unsupported Media
// Type), else 500 Internal server error.
func failure(err error) (status int, outcome, msg string) {
	var ge *integration.GatewayError
	if errors.As(err, &ge) {
		return ge.Status, OutcomeBadRequest, ge.Message
	}
	return http.StatusInternalServerError, OutcomeExecutionError, frameInternalError
}
