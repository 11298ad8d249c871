package table_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"

	"github.com/sebelas/sebelas/internal/telemetry"
)

// Every client counts its calls, retries, throttled attempts, failures and
// consumed capacity on the process's metrics. Throttling is injected by a
// fake endpoint: DynamoDB Local never throttles.
func TestClientTelemetry(t *testing.T) {
	const throttle = `{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"slow down"}`
	srv, _ := fakeDynamo(t, reply{400, throttle}, reply{400, throttle}, reply{200, `{"ConsumedCapacity":{"TableName":"sebelas","CapacityUnits":2}}`},
		reply{400, `{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"no"}`})
	client := fakeClient(t, srv.URL)
	before := telemetry.Snapshot()
	put := &dynamodb.PutItemInput{TableName: aws.String("sebelas"), Item: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "x"}}}
	if _, err := client.PutItem(context.Background(), put); err != nil {
		t.Fatalf("PutItem: %v", err)
	}
	if put.ReturnConsumedCapacity != types.ReturnConsumedCapacityTotal {
		t.Errorf("ReturnConsumedCapacity = %q, want TOTAL asked for", put.ReturnConsumedCapacity)
	}
	if _, err := client.PutItem(context.Background(), put); err == nil {
		t.Fatal("second PutItem: want the condition failure")
	}
	after := telemetry.Snapshot()
	got := map[string]float64{}
	for _, s := range []string{
		`sebelas_dynamodb_calls_total{operation="PutItem"}`,
		`sebelas_dynamodb_retries_total{operation="PutItem"}`,
		`sebelas_dynamodb_throttles_total{operation="PutItem"}`,
		`sebelas_dynamodb_consumed_capacity_total{operation="PutItem"}`,
		`sebelas_dynamodb_errors_total{operation="PutItem",code="ConditionalCheckFailedException"}`,
		`sebelas_dynamodb_call_duration_seconds_count{operation="PutItem"}`,
	} {
		got[s] = after[s] - before[s]
	}
	want := map[string]float64{
		`sebelas_dynamodb_calls_total{operation="PutItem"}`:                                         2,
		`sebelas_dynamodb_retries_total{operation="PutItem"}`:                                       2,
		`sebelas_dynamodb_throttles_total{operation="PutItem"}`:                                     2,
		`sebelas_dynamodb_consumed_capacity_total{operation="PutItem"}`:                             2,
		`sebelas_dynamodb_errors_total{operation="PutItem",code="ConditionalCheckFailedException"}`: 1,
		`sebelas_dynamodb_call_duration_seconds_count{operation="PutItem"}`:                         2,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
}
