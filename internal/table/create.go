package table

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	tabledef "github.com/sebelas/sebelas/infra/dynamodb"
)

// createTimeout bounds Create and Delete when ctx has no deadline. Real
// DynamoDB takes seconds to a few minutes; DynamoDB Local is immediate.
const createTimeout = 10 * time.Minute

// CreateTableInput returns the CreateTable request for the table named name,
// built from infra/dynamodb/table.json.
func CreateTableInput(name string) *dynamodb.CreateTableInput {
	d := tabledef.Definition()
	in := &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: types.BillingMode(d.BillingMode),
		KeySchema:   keySchema(d.KeySchema),
	}
	for _, a := range d.AttributeDefinitions {
		in.AttributeDefinitions = append(in.AttributeDefinitions, types.AttributeDefinition{
			AttributeName: aws.String(a.AttributeName),
			AttributeType: types.ScalarAttributeType(a.AttributeType),
		})
	}
	for _, g := range d.GlobalSecondaryIndexes {
		p := &types.Projection{ProjectionType: types.ProjectionType(g.Projection.ProjectionType)}
		if len(g.Projection.NonKeyAttributes) > 0 {
			p.NonKeyAttributes = g.Projection.NonKeyAttributes
		}
		in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, types.GlobalSecondaryIndex{
			IndexName:  aws.String(g.IndexName),
			KeySchema:  keySchema(g.KeySchema),
			Projection: p,
		})
	}
	return in
}

func keySchema(ks []tabledef.KeyElement) []types.KeySchemaElement {
	out := make([]types.KeySchemaElement, 0, len(ks))
	for _, k := range ks {
		out = append(out, types.KeySchemaElement{
			AttributeName: aws.String(k.AttributeName),
			KeyType:       types.KeyType(k.KeyType),
		})
	}
	return out
}

// Create creates the table name from infra/dynamodb, waits until it and its
// indexes are ACTIVE, and enables TTL on tabledef.TTLAttribute. It is
// idempotent: an existing table is waited for and its TTL ensured. It does
// not check that an existing table has the right schema.
//
// A store that does not implement UpdateTimeToLive (some DynamoDB-compatible
// emulators) is tolerated: items then simply never expire, which only
// affects housekeeping, never correctness.
func Create(ctx context.Context, client *dynamodb.Client, name string) error {
	ctx, cancel := withDefaultTimeout(ctx, createTimeout)
	defer cancel()
	_, err := client.CreateTable(ctx, CreateTableInput(name))
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("table: create %s: %w", name, Classify(err))
	}
	if err := waitActive(ctx, client, name); err != nil {
		return err
	}
	return ensureTTL(ctx, client, name)
}

func waitActive(ctx context.Context, client *dynamodb.Client, name string) error {
	delay := 20 * time.Millisecond
	for {
		out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		if err != nil {
			return fmt.Errorf("table: describe %s: %w", name, Classify(err))
		}
		if active(out.Table) {
			return nil
		}
		if out.Table.TableStatus == types.TableStatusDeleting {
			return fmt.Errorf("table: %s is being deleted", name)
		}
		if err := sleep(ctx, delay); err != nil {
			return fmt.Errorf("table: wait for %s to be ACTIVE (now %s): %w", name, out.Table.TableStatus, Classify(err))
		}
		delay = min(delay*2, 2*time.Second)
	}
}

func active(t *types.TableDescription) bool {
	if t == nil || t.TableStatus != types.TableStatusActive {
		return false
	}
	for _, g := range t.GlobalSecondaryIndexes {
		if g.IndexStatus != types.IndexStatusActive {
			return false
		}
	}
	return true
}

func ensureTTL(ctx context.Context, client *dynamodb.Client, name string) error {
	d, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(name)})
	if err == nil && d.TimeToLiveDescription != nil {
		switch d.TimeToLiveDescription.TimeToLiveStatus {
		case types.TimeToLiveStatusEnabled, types.TimeToLiveStatusEnabling:
			if aws.ToString(d.TimeToLiveDescription.AttributeName) == tabledef.TTLAttribute {
				return nil
			}
		}
	}
	if err != nil && unsupported(err) {
		return nil
	}
	_, err = client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(name),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(tabledef.TTLAttribute),
			Enabled:       aws.Bool(true),
		},
	})
	if err == nil || unsupported(err) {
		return nil
	}
	return fmt.Errorf("table: enable TTL on %s.%s: %w", name, tabledef.TTLAttribute, Classify(err))
}

// unsupported reports an error saying the store does not implement the
// operation.
func unsupported(err error) bool {
	var api smithy.APIError
	if !errors.As(err, &api) {
		return false
	}
	switch api.ErrorCode() {
	case "UnknownOperationException", "UnsupportedOperationException", "NotImplemented", "InvalidAction":
		return true
	}
	return false
}

// Delete deletes the table name and waits until it is gone. A missing
// table is not an error.
func Delete(ctx context.Context, client *dynamodb.Client, name string) error {
	ctx, cancel := withDefaultTimeout(ctx, createTimeout)
	defer cancel()
	_, err := client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("table: delete %s: %w", name, Classify(err))
	}
	delay := 20 * time.Millisecond
	for {
		_, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		if errors.As(err, &nf) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("table: describe %s: %w", name, Classify(err))
		}
		if err := sleep(ctx, delay); err != nil {
			return fmt.Errorf("table: wait for %s to be deleted: %w", name, Classify(err))
		}
		delay = min(delay*2, 2*time.Second)
	}
}

func withDefaultTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
