package dynamodb

import (
	"fmt"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/wsgate/wsgate/streams"
)

// convertRecord turns a GetRecords record into the event record a Lambda
// function receives: the same fields plus eventSourceARN, which the
// Streams API leaves out and the event source mapping adds.
func convertRecord(r types.Record, streamARN string) (streams.Record, error) {
	out := streams.Record{
		AWSRegion:      aws.ToString(r.AwsRegion),
		EventID:        aws.ToString(r.EventID),
		EventName:      string(r.EventName),
		EventSource:    aws.ToString(r.EventSource),
		EventVersion:   aws.ToString(r.EventVersion),
		EventSourceArn: streamARN,
	}
	if out.EventSource == "" {
		out.EventSource = "aws:dynamodb"
	}
	if out.EventVersion == "" {
		out.EventVersion = "1.1"
	}
	if id := r.UserIdentity; id != nil {
		out.UserIdentity = &events.DynamoDBUserIdentity{Type: aws.ToString(id.Type), PrincipalID: aws.ToString(id.PrincipalId)}
	}
	d := r.Dynamodb
	if d == nil {
		return out, fmt.Errorf("record %s has no dynamodb field", out.EventID)
	}
	var err error
	out.Change = events.DynamoDBStreamRecord{
		SequenceNumber: aws.ToString(d.SequenceNumber),
		SizeBytes:      aws.ToInt64(d.SizeBytes),
		StreamViewType: string(d.StreamViewType),
	}
	// The zero time would marshal as a large negative number (see the
	// SecondsEpochTime trap in aws-lambda-go), so a missing time becomes
	// the time the record was read.
	created := time.Now()
	if d.ApproximateCreationDateTime != nil {
		created = *d.ApproximateCreationDateTime
	}
	out.Change.ApproximateCreationDateTime = events.SecondsEpochTime{Time: created.Truncate(time.Second)}
	if out.Change.Keys, err = convertMap(d.Keys); err != nil {
		return out, fmt.Errorf("record %s keys: %w", out.EventID, err)
	}
	if out.Change.NewImage, err = convertMap(d.NewImage); err != nil {
		return out, fmt.Errorf("record %s new image: %w", out.EventID, err)
	}
	if out.Change.OldImage, err = convertMap(d.OldImage); err != nil {
		return out, fmt.Errorf("record %s old image: %w", out.EventID, err)
	}
	return out, nil
}

func convertMap(m map[string]types.AttributeValue) (map[string]events.DynamoDBAttributeValue, error) {
	if m == nil {
		return nil, nil
	}
	out := make(map[string]events.DynamoDBAttributeValue, len(m))
	for k, v := range m {
		a, err := convertValue(v)
		if err != nil {
			return nil, fmt.Errorf("attribute %s: %w", k, err)
		}
		out[k] = a
	}
	return out, nil
}

func convertValue(v types.AttributeValue) (events.DynamoDBAttributeValue, error) {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return events.NewStringAttribute(v.Value), nil
	case *types.AttributeValueMemberN:
		return events.NewNumberAttribute(v.Value), nil
	case *types.AttributeValueMemberB:
		return events.NewBinaryAttribute(v.Value), nil
	case *types.AttributeValueMemberBOOL:
		return events.NewBooleanAttribute(v.Value), nil
	case *types.AttributeValueMemberNULL:
		return events.NewNullAttribute(), nil
	case *types.AttributeValueMemberSS:
		return events.NewStringSetAttribute(v.Value), nil
	case *types.AttributeValueMemberNS:
		return events.NewNumberSetAttribute(v.Value), nil
	case *types.AttributeValueMemberBS:
		return events.NewBinarySetAttribute(v.Value), nil
	case *types.AttributeValueMemberL:
		l := make([]events.DynamoDBAttributeValue, len(v.Value))
		for i, e := range v.Value {
			a, err := convertValue(e)
			if err != nil {
				return a, fmt.Errorf("[%d]: %w", i, err)
			}
			l[i] = a
		}
		return events.NewListAttribute(l), nil
	case *types.AttributeValueMemberM:
		m, err := convertMap(v.Value)
		if err != nil {
			return events.DynamoDBAttributeValue{}, err
		}
		return events.NewMapAttribute(m), nil
	case *types.UnknownUnionMember:
		return events.DynamoDBAttributeValue{}, fmt.Errorf("unknown attribute type %q", v.Tag)
	default:
		return events.DynamoDBAttributeValue{}, fmt.Errorf("unsupported attribute value %T", v)
	}
}
