package template

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// NewDynamoDBClient is a client for a local DynamoDB endpoint (moto_server,
// DynamoDB Local, LocalStack). Credentials come from the standard chain;
// with none there, fixed local ones are used, which such endpoints accept.
func NewDynamoDBClient(ctx context.Context, endpoint, region string) (*dynamodb.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(region))
	if err != nil {
		return nil, fmt.Errorf("loading aws config: %w", err)
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		cfg.Credentials = credentials.NewStaticCredentialsProvider("local", "local", "")
	}
	return dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(endpoint) }), nil
}

// tableDef is the part of a table's CloudFormation definition that
// CreateTable takes; CloudFormation spells it as the API does.
type tableDef struct {
	AttributeDefinitions   []types.AttributeDefinition
	KeySchema              []types.KeySchemaElement
	GlobalSecondaryIndexes []struct {
		IndexName  string
		KeySchema  []types.KeySchemaElement
		Projection types.Projection
	}
	LocalSecondaryIndexes []struct {
		IndexName  string
		KeySchema  []types.KeySchemaElement
		Projection types.Projection
	}
	StreamSpecification *struct{ StreamViewType types.StreamViewType }
}

// createInput builds the CreateTable call for a table. Billing is always
// on demand locally: capacity has no meaning there.
func (t *Table) createInput() (*dynamodb.CreateTableInput, error) {
	b, err := json.Marshal(t.Definition)
	if err != nil {
		return nil, err
	}
	var d tableDef
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("table %s (%s): %w", t.Name, t.ID, err)
	}
	in := &dynamodb.CreateTableInput{
		TableName:            aws.String(t.Name),
		AttributeDefinitions: d.AttributeDefinitions,
		KeySchema:            d.KeySchema,
		BillingMode:          types.BillingModePayPerRequest,
	}
	for _, g := range d.GlobalSecondaryIndexes {
		in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, types.GlobalSecondaryIndex{
			IndexName: aws.String(g.IndexName), KeySchema: g.KeySchema, Projection: &g.Projection,
		})
	}
	for _, l := range d.LocalSecondaryIndexes {
		in.LocalSecondaryIndexes = append(in.LocalSecondaryIndexes, types.LocalSecondaryIndex{
			IndexName: aws.String(l.IndexName), KeySchema: l.KeySchema, Projection: &l.Projection,
		})
	}
	if s := d.StreamSpecification; s != nil {
		in.StreamSpecification = &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: s.StreamViewType}
	}
	return in, nil
}

// CreateTables creates each table that does not exist yet and waits until
// it is ACTIVE. It returns the names it created; a table that exists is
// left as it is (its data survives restarts).
func CreateTables(ctx context.Context, db *dynamodb.Client, tables []Table) ([]string, error) {
	var created []string
	for i := range tables {
		t := &tables[i]
		_, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(t.Name)})
		if err == nil {
			continue
		}
		var nf *types.ResourceNotFoundException
		if !errors.As(err, &nf) {
			return created, fmt.Errorf("describing table %s: %w", t.Name, err)
		}
		in, err := t.createInput()
		if err != nil {
			return created, err
		}
		if _, err := db.CreateTable(ctx, in); err != nil {
			return created, fmt.Errorf("creating table %s (%s): %w", t.Name, t.ID, err)
		}
		w := dynamodb.NewTableExistsWaiter(db)
		if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(t.Name)}, 2*time.Minute); err != nil {
			return created, fmt.Errorf("waiting for table %s: %w", t.Name, err)
		}
		created = append(created, t.Name)
	}
	return created, nil
}
