// Command authz is a Lambda REQUEST authorizer written with aws-lambda-go,
// as teams deploy it on AWS. The Authorization header picks its answer.
package main

import (
	"context"
	"errors"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

func policy(effect, resource string, ctx map[string]any) events.APIGatewayCustomAuthorizerResponse {
	return events.APIGatewayCustomAuthorizerResponse{
		PrincipalID: "alice",
		PolicyDocument: events.APIGatewayCustomAuthorizerPolicy{
			Version:   "2012-10-17",
			Statement: []events.IAMPolicyStatement{{Action: []string{"execute-api:Invoke"}, Effect: effect, Resource: []string{resource}}},
		},
		Context: ctx,
	}
}

func handle(_ context.Context, ev events.APIGatewayCustomAuthorizerRequestTypeRequest) (events.APIGatewayCustomAuthorizerResponse, error) {
	if ev.Type != "REQUEST" || !strings.HasSuffix(ev.MethodArn, "/$connect") || ev.Headers["Upgrade"] == "" {
		return events.APIGatewayCustomAuthorizerResponse{}, errors.New("unexpected event")
	}
	switch ev.Headers["Authorization"] {
	case "allow":
		return policy("Allow", ev.MethodArn, map[string]any{"user": "alice", "n": 1, "ok": true, "groups": "vip, news"}), nil
	case "deny":
		return policy("Deny", ev.MethodArn, nil), nil
	case "stage-wildcard":
		// The classic mistake: .../dev/*/* does not match .../dev/$connect.
		i := strings.LastIndex(ev.MethodArn, "/")
		return policy("Allow", ev.MethodArn[:i]+"/*/*", nil), nil
	case "unauthorized":
		return events.APIGatewayCustomAuthorizerResponse{}, errors.New("Unauthorized")
	}
	panic("unknown token")
}

func main() { lambda.Start(handle) }
