// Package connections is what the Lambda-shaped examples share: the
// DynamoDB table of open WebSocket connection ids, and the API Gateway
// Management API client that posts to them.
//
// It is the code of AWS's simple-websockets-chat-app, in Go: $connect puts
// the connection id into the table named by TABLE_NAME, $disconnect deletes
// it, and whoever broadcasts scans the table and posts to every id, deleting
// the ones API Gateway answers 410 Gone for. The same code runs on AWS and
// under wsgate; only the environment differs (see NewManagementClient).
package connections

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	mgmttypes "github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// keyAttribute is the table's partition key, as in the AWS sample.
const keyAttribute = "connectionId"

// Table is the connections table.
type Table struct {
	db   *dynamodb.Client
	name string
}

// Open returns the table named by TABLE_NAME. The SDK's standard
// configuration applies, so AWS_ENDPOINT_URL_DYNAMODB points it at
// moto_server or DynamoDB Local.
func Open(ctx context.Context) (*Table, error) {
	name := os.Getenv("TABLE_NAME")
	if name == "" {
		return nil, errors.New("TABLE_NAME is not set")
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("loading AWS config: %w", err)
	}
	return &Table{db: dynamodb.NewFromConfig(cfg), name: name}, nil
}

// Add records an open connection.
func (t *Table) Add(ctx context.Context, id string) error {
	_, err := t.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(t.name),
		Item:      map[string]types.AttributeValue{keyAttribute: &types.AttributeValueMemberS{Value: id}},
	})
	return err
}

// Remove forgets a connection.
func (t *Table) Remove(ctx context.Context, id string) error {
	_, err := t.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: aws.String(t.name),
		Key:       map[string]types.AttributeValue{keyAttribute: &types.AttributeValueMemberS{Value: id}},
	})
	return err
}

// IDs lists every recorded connection id.
func (t *Table) IDs(ctx context.Context) ([]string, error) {
	var ids []string
	p := dynamodb.NewScanPaginator(t.db, &dynamodb.ScanInput{
		TableName:            aws.String(t.name),
		ProjectionExpression: aws.String(keyAttribute),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("scanning %s: %w", t.name, err)
		}
		for _, item := range page.Items {
			if s, ok := item[keyAttribute].(*types.AttributeValueMemberS); ok {
				ids = append(ids, s.Value)
			}
		}
	}
	return ids, nil
}

// EventEndpoint is the Management API endpoint of the API that sent an
// event, https://{domainName}/{stage}, as AWS's samples build it.
func EventEndpoint(rc events.APIGatewayWebsocketProxyRequestContext) string {
	return "https://" + rc.DomainName + "/" + rc.Stage
}

// NewManagementClient returns a Management API client. The SDK's
// configuration comes first: wsgate sets AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI
// for the handlers it runs, and the SDK uses it by itself. Without it the
// client uses endpoint (EventEndpoint on AWS); both unset is an error.
func NewManagementClient(ctx context.Context, endpoint string) (*apigatewaymanagementapi.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("loading AWS config: %w", err)
	}
	fromEnv := os.Getenv("AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI") != ""
	if !fromEnv && endpoint == "" {
		return nil, errors.New("no Management API endpoint: set AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI")
	}
	return apigatewaymanagementapi.NewFromConfig(cfg, func(o *apigatewaymanagementapi.Options) {
		if !fromEnv {
			o.BaseEndpoint = aws.String(endpoint)
		}
	}), nil
}

// Broadcast posts each message, in order, to every connection in the table
// and removes the connections API Gateway reports gone (410). It returns
// how many posts succeeded.
func Broadcast(ctx context.Context, t *Table, api *apigatewaymanagementapi.Client, msgs ...[]byte) (int, error) {
	ids, err := t.IDs(ctx)
	if err != nil {
		return 0, err
	}
	sent := 0
	for _, id := range ids {
		for _, data := range msgs {
			_, err := api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: data})
			var gone *mgmttypes.GoneException
			if errors.As(err, &gone) {
				if err := t.Remove(ctx, id); err != nil {
					return sent, fmt.Errorf("removing gone connection %s: %w", id, err)
				}
				break
			}
			if err != nil {
				return sent, fmt.Errorf("posting to %s: %w", id, err)
			}
			sent++
		}
	}
	return sent, nil
}

// OnConnect is the $connect handler: it records the new connection's id.
// An error refuses the connection (the client's handshake fails), as on AWS.
func OnConnect(ctx context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	return track(ctx, req, (*Table).Add, "Connected.")
}

// OnDisconnect is the $disconnect handler: it forgets the connection's id.
func OnDisconnect(ctx context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	return track(ctx, req, (*Table).Remove, "Disconnected.")
}

func track(ctx context.Context, req events.APIGatewayWebsocketProxyRequest, op func(*Table, context.Context, string) error, body string) (events.APIGatewayProxyResponse, error) {
	table, err := Open(ctx)
	if err != nil {
		return events.APIGatewayProxyResponse{}, err
	}
	if err := op(table, ctx, req.RequestContext.ConnectionID); err != nil {
		return events.APIGatewayProxyResponse{}, err
	}
	return events.APIGatewayProxyResponse{StatusCode: 200, Body: body}, nil
}
