package table_test

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"

	tabledef "github.com/sebelas/sebelas/infra/dynamodb"
	"github.com/sebelas/sebelas/internal/devtools/ddbtest"
	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/table"
)

// schema is the part of a table description Create is responsible for.
type schema struct {
	Status      string
	Attributes  map[string]string
	Key         []string // "name HASH", "name RANGE"
	Indexes     map[string][]string
	Projections map[string]string
	Billing     string
}

func describe(t *testing.T, client *dynamodb.Client, name string) schema {
	t.Helper()
	out, err := client.DescribeTable(context.Background(), &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	if err != nil {
		t.Fatalf("DescribeTable: %v", err)
	}
	d := out.Table
	s := schema{
		Status:      string(d.TableStatus),
		Attributes:  map[string]string{},
		Key:         keys(d.KeySchema),
		Indexes:     map[string][]string{},
		Projections: map[string]string{},
	}
	if d.BillingModeSummary != nil {
		s.Billing = string(d.BillingModeSummary.BillingMode)
	}
	for _, a := range d.AttributeDefinitions {
		s.Attributes[aws.ToString(a.AttributeName)] = string(a.AttributeType)
	}
	for _, g := range d.GlobalSecondaryIndexes {
		s.Indexes[aws.ToString(g.IndexName)] = keys(g.KeySchema)
		s.Projections[aws.ToString(g.IndexName)] = string(g.Projection.ProjectionType)
	}
	return s
}

func keys(ks []types.KeySchemaElement) []string {
	var out []string
	for _, k := range ks {
		out = append(out, aws.ToString(k.AttributeName)+" "+string(k.KeyType))
	}
	sort.Strings(out)
	return out
}

func TestCreateIsIdempotentAndMatchesTableDef(t *testing.T) {
	client, name := ddbtest.New(t) // the first Create
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := table.Create(ctx, client, name); err != nil {
		t.Fatalf("second Create: %v", err)
	}
	want := schema{
		Status:      "ACTIVE",
		Attributes:  map[string]string{"pk": "S", "sk": "S", "gsi1pk": "S", "gsi1sk": "S"},
		Key:         []string{"pk HASH", "sk RANGE"},
		Indexes:     map[string][]string{"gsi1": {"gsi1pk HASH", "gsi1sk RANGE"}},
		Projections: map[string]string{"gsi1": "ALL"},
		Billing:     "PAY_PER_REQUEST",
	}
	if diff := cmp.Diff(want, describe(t, client, name)); diff != "" {
		t.Errorf("table schema mismatch (-want +got):\n%s", diff)
	}

	ttl, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(name)})
	if err != nil {
		t.Fatalf("DescribeTimeToLive: %v", err)
	}
	if d := ttl.TimeToLiveDescription; d == nil || d.TimeToLiveStatus != types.TimeToLiveStatusEnabled || aws.ToString(d.AttributeName) != tabledef.TTLAttribute {
		t.Errorf("TTL = %+v, want ENABLED on %s", d, tabledef.TTLAttribute)
	}
}

func TestDeleteThenMissingTable(t *testing.T) {
	client, _ := ddbtest.New(t)
	name := ddbtest.TableName(t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := table.Create(ctx, client, name); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if err := table.Delete(ctx, client, name); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if err := table.Delete(ctx, client, name); err != nil {
		t.Fatalf("Delete of a missing table: %v", err)
	}
	_, err := client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(name),
		Key:       map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "x"}, "sk": &types.AttributeValueMemberS{Value: "y"}},
	})
	got := table.Classify(err)
	if fault.KindOf(got) != fault.KindTransient || fault.ReasonOf(got) != table.ReasonTableMissing {
		t.Errorf("Classify(GetItem on a missing table) = %v, want transient %s", got, table.ReasonTableMissing)
	}
}

func TestValidationErrorFromStore(t *testing.T) {
	client, name := ddbtest.New(t)
	// A key without its sort key is our bug: DynamoDB says ValidationException.
	_, err := client.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(name),
		Key:       map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "x"}},
	})
	if got := fault.ReasonOf(table.Classify(err)); got != table.ReasonValidation {
		t.Errorf("reason = %q, want %q (err %v)", got, table.ReasonValidation, err)
	}
}
