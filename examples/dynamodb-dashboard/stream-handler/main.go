// Command stream-handler is a DynamoDB stream handler, as a Lambda
// function behind an event source mapping receives the orders table's
// changes: it posts each change, as JSON, to every connection in the
// connections table (TABLE_NAME).
//
// A change looks like
//
//	{"eventName":"INSERT","keys":{"id":"o-1"},"newImage":{"id":"o-1","qty":2},"oldImage":null}
//
// with attribute values as plain JSON rather than DynamoDB's {"S":...}.
// The Management API endpoint comes from AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI:
// template.yaml sets it on AWS, wsgate sets it for the handlers it runs.
package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/wsgate/wsgate/examples/internal/connections"
)

// change is what the dashboard receives for one stream record.
type change struct {
	EventName string         `json:"eventName"`
	Keys      map[string]any `json:"keys"`
	NewImage  map[string]any `json:"newImage"`
	OldImage  map[string]any `json:"oldImage"`
}

func handle(ctx context.Context, ev events.DynamoDBEvent) error {
	msgs := make([][]byte, 0, len(ev.Records))
	for _, r := range ev.Records {
		b, err := json.Marshal(change{
			EventName: r.EventName,
			Keys:      plainMap(r.Change.Keys),
			NewImage:  plainMap(r.Change.NewImage),
			OldImage:  plainMap(r.Change.OldImage),
		})
		if err != nil {
			return err
		}
		msgs = append(msgs, b)
	}
	table, err := connections.Open(ctx)
	if err != nil {
		return err
	}
	api, err := connections.NewManagementClient(ctx, "")
	if err != nil {
		return err
	}
	// An error fails the batch; the event source mapping retries it.
	if _, err := connections.Broadcast(ctx, table, api, msgs...); err != nil {
		return fmt.Errorf("broadcasting %d changes: %w", len(msgs), err)
	}
	return nil
}

// plainMap turns an item's DynamoDB JSON into plain JSON values; nil stays
// nil (an INSERT has no old image).
func plainMap(m map[string]events.DynamoDBAttributeValue) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = plain(v)
	}
	return out
}

func plain(v events.DynamoDBAttributeValue) any {
	switch v.DataType() {
	case events.DataTypeString:
		return v.String()
	case events.DataTypeNumber:
		return json.Number(v.Number())
	case events.DataTypeBoolean:
		return v.Boolean()
	case events.DataTypeBinary:
		return v.Binary() // base64 in JSON
	case events.DataTypeMap:
		return plainMap(v.Map())
	case events.DataTypeList:
		l := make([]any, 0, len(v.List()))
		for _, e := range v.List() {
			l = append(l, plain(e))
		}
		return l
	case events.DataTypeStringSet:
		return v.StringSet()
	case events.DataTypeNumberSet:
		ns := make([]json.Number, 0, len(v.NumberSet()))
		for _, n := range v.NumberSet() {
			ns = append(ns, json.Number(n))
		}
		return ns
	case events.DataTypeBinarySet:
		return v.BinarySet()
	default: // NULL
		return nil
	}
}

func main() { lambda.Start(handle) }
