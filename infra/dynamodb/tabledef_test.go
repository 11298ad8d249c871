package tabledef

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDefinition(t *testing.T) {
	want := Table{
		AttributeDefinitions: []AttributeDefinition{
			{PartitionKey, "S"}, {SortKey, "S"}, {GSI1PK, "S"}, {GSI1SK, "S"},
		},
		KeySchema: []KeyElement{{PartitionKey, "HASH"}, {SortKey, "RANGE"}},
		GlobalSecondaryIndexes: []GlobalSecondaryIndex{{
			IndexName:  GSI1,
			KeySchema:  []KeyElement{{GSI1PK, "HASH"}, {GSI1SK, "RANGE"}},
			Projection: Projection{ProjectionType: "ALL"},
		}},
		BillingMode: "PAY_PER_REQUEST",
	}
	if diff := cmp.Diff(want, Definition()); diff != "" {
		t.Errorf("Definition() mismatch (-want +got):\n%s", diff)
	}
}

func TestDefinitionIsACopy(t *testing.T) {
	d := Definition()
	d.KeySchema[0].AttributeName = "changed"
	d.GlobalSecondaryIndexes[0].KeySchema[0].AttributeName = "changed"
	if got := Definition(); got.KeySchema[0].AttributeName != PartitionKey || got.GlobalSecondaryIndexes[0].KeySchema[0].AttributeName != GSI1PK {
		t.Fatalf("Definition() shares memory with the package copy: %+v", got)
	}
}

func TestParseRejects(t *testing.T) {
	for name, in := range map[string]string{
		"unknown field": `{"TableName":"x","AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"}],"KeySchema":[{"AttributeName":"pk","KeyType":"HASH"}],"BillingMode":"PAY_PER_REQUEST"}`,
		"undefined key": `{"AttributeDefinitions":[],"KeySchema":[{"AttributeName":"pk","KeyType":"HASH"}],"BillingMode":"PAY_PER_REQUEST"}`,
		"range first":   `{"AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"}],"KeySchema":[{"AttributeName":"pk","KeyType":"RANGE"}],"BillingMode":"PAY_PER_REQUEST"}`,
		"bad billing":   `{"AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"}],"KeySchema":[{"AttributeName":"pk","KeyType":"HASH"}],"BillingMode":"FREE"}`,
		"bad attr type": `{"AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"X"}],"KeySchema":[{"AttributeName":"pk","KeyType":"HASH"}],"BillingMode":"PAY_PER_REQUEST"}`,
		"not json":      `{`,
	} {
		if _, err := Parse([]byte(in)); err == nil {
			t.Errorf("%s: Parse succeeded, want error", name)
		}
	}
}
