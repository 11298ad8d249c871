package bench

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestParseRequest checks what the recorder reads from DynamoDB requests as
// the SDK sends them: the label, and every partition key written (table
// and index).
func TestParseRequest(t *testing.T) {
	tests := []struct {
		name, op, body string
		label          string
		keys           []writtenKey
	}{
		{
			name: "the charge transaction: put with its GSI key, update of the balance",
			op:   "TransactWriteItems",
			body: `{"TransactItems":[{"Put":{"TableName":"t","Item":{"pk":{"S":"C#c1"},"sk":{"S":"C"},"amount":{"N":"5"},"gsi1pk":{"S":"M#m-id-flagship#2026-11-11#07"}}}},` +
				`{"Update":{"TableName":"t","Key":{"pk":{"S":"W#w1"},"sk":{"S":"BAL#IDR"}},"UpdateExpression":"SET #0 = #0 - :0"}}],"ReturnConsumedCapacity":"INDEXES"}`,
			label: "TransactWriteItems (charge item)",
			keys:  []writtenKey{{key: "C#c1"}, {key: "M#m-id-flagship#2026-11-11#07", index: true}, {key: "W#w1"}},
		},
		{
			name:  "fraud's counter",
			op:    "UpdateItem",
			body:  `{"TableName":"t","Key":{"pk":{"S":"V#w1#IDR"},"sk":{"S":"V"}}}`,
			label: "UpdateItem (velocity counter)",
			keys:  []writtenKey{{key: "V#w1#IDR"}},
		},
		{
			name:  "a read writes nothing",
			op:    "GetItem",
			body:  `{"TableName":"t","Key":{"pk":{"S":"W#w1"},"sk":{"S":"BAL#IDR"}},"ConsistentRead":true}`,
			label: "GetItem (payer balance)",
		},
		{
			name:  "a query of the index",
			op:    "Query",
			body:  `{"TableName":"t","IndexName":"gsi1","KeyConditionExpression":"#0 = :0"}`,
			label: "Query (index gsi1)",
		},
		{
			name:  "a batch",
			op:    "BatchWriteItem",
			body:  `{"RequestItems":{"t":[{"PutRequest":{"Item":{"pk":{"S":"MD#ID#2026-11-11#03"}}}},{"DeleteRequest":{"Key":{"pk":{"S":"X#1"}}}}]}}`,
			label: "BatchWriteItem",
			keys:  []writtenKey{{key: "MD#ID#2026-11-11#03"}, {key: "X#1"}},
		},
		{name: "not JSON", op: "PutItem", body: `{`, label: "PutItem"},
	}
	for _, tc := range tests {
		label, keys := parseRequest(tc.op, []byte(tc.body), "gsi1pk")
		if diff := cmp.Diff(tc.keys, keys, cmp.AllowUnexported(writtenKey{})); diff != "" || label != tc.label {
			t.Errorf("%s: label %q, want %q; keys (-want +got):\n%s", tc.name, label, tc.label, diff)
		}
	}
}

// TestConsumed reads DynamoDB's ConsumedCapacity as an object (single-item
// operations) and as a list with the index share (transactions).
func TestConsumed(t *testing.T) {
	tests := []struct {
		body             string
		tableCU, indexCU float64
	}{
		{`{"ConsumedCapacity":[{"TableName":"t","CapacityUnits":6,"Table":{"CapacityUnits":4},"GlobalSecondaryIndexes":{"gsi1":{"CapacityUnits":2}}}]}`, 4, 2},
		{`{"ConsumedCapacity":{"TableName":"t","CapacityUnits":1}}`, 1, 0},
		{`{"ConsumedCapacity":[{"CapacityUnits":6,"GlobalSecondaryIndexes":{"gsi1":{"CapacityUnits":2}}}]}`, 4, 2},
		{`{}`, 0, 0},
	}
	for _, tc := range tests {
		tcu, icu := consumed([]byte(tc.body))
		if tcu != tc.tableCU || icu != tc.indexCU {
			t.Errorf("%s: table %v index %v, want %v %v", tc.body, tcu, icu, tc.tableCU, tc.indexCU)
		}
	}
}
