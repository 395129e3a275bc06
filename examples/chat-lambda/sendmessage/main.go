// Command sendmessage handles {"action":"sendmessage","data":"..."}: it
// posts data to every connection in the connections table (TABLE_NAME).
package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/wsgate/wsgate/examples/internal/connections"
)

func handle(ctx context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	var msg struct {
		Data string `json:"data"`
	}
	if err := json.Unmarshal([]byte(req.Body), &msg); err != nil {
		return events.APIGatewayProxyResponse{StatusCode: 400, Body: "want {\"action\":\"sendmessage\",\"data\":\"...\"}"}, nil
	}
	table, err := connections.Open(ctx)
	if err != nil {
		return events.APIGatewayProxyResponse{}, err
	}
	api, err := connections.NewManagementClient(ctx, connections.EventEndpoint(req.RequestContext))
	if err != nil {
		return events.APIGatewayProxyResponse{}, err
	}
	if _, err := connections.Broadcast(ctx, table, api, []byte(msg.Data)); err != nil {
		return events.APIGatewayProxyResponse{}, fmt.Errorf("broadcasting: %w", err)
	}
	return events.APIGatewayProxyResponse{StatusCode: 200, Body: "Data sent."}, nil
}

func main() { lambda.Start(handle) }
