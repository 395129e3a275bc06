// Command postback is an ordinary aws-lambda-go WebSocket handler, as
// deployed on AWS: it posts to its own connection with aws-sdk-go-v2's
// apigatewaymanagementapi client (endpoint, region and credentials from the
// standard environment, which wsgate's command runner sets) and also
// returns a body for the two-way route.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
)

func handle(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return events.APIGatewayProxyResponse{}, err
	}
	api := apigatewaymanagementapi.NewFromConfig(cfg)
	_, err = api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{
		ConnectionId: aws.String(ev.RequestContext.ConnectionID),
		Data:         []byte("pushed: " + ev.Body),
	})
	if err != nil {
		return events.APIGatewayProxyResponse{}, err
	}
	return events.APIGatewayProxyResponse{StatusCode: 200, Body: "returned: " + ev.Body}, nil
}

func main() { lambda.Start(handle) }
