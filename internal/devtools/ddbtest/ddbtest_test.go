package ddbtest_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"

	"github.com/sebelas/sebelas/internal/devtools/ddbtest"
	"github.com/sebelas/sebelas/internal/table"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

func TestTableName(t *testing.T) {
	tests := []struct{ in, prefix string }{
		{"TestCharge", "t_TestCharge_"},
		{"TestCharge/duplicate_id#2", "t_TestCharge_duplicate_id_2_"},
		{"TestÜber/a b", "t_Test_ber_a_b_"},
		{strings.Repeat("x", 400), "t_" + strings.Repeat("x", 244) + "_"},
	}
	for _, tt := range tests {
		got := ddbtest.TableName(tt.in)
		if !strings.HasPrefix(got, tt.prefix) || len(got) != len(tt.prefix)+8 {
			t.Errorf("TableName(%q) = %q, want %q + 8 hex digits", tt.in, got, tt.prefix)
		}
		if err := table.ValidateTableName(got); err != nil {
			t.Errorf("TableName(%q): %v", tt.in, err)
		}
	}
	if a, b := ddbtest.TableName("TestX"), ddbtest.TableName("TestX"); a == b {
		t.Errorf("TableName twice gave %q both times", a)
	}
}

func key(pk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: pk},
		"sk": &types.AttributeValueMemberS{Value: "x"},
	}
}

func TestNewGivesEachTestItsOwnTable(t *testing.T) {
	ctx := context.Background()
	var names []string
	var client *dynamodb.Client
	for i := 0; i < 2; i++ {
		t.Run("sub", func(t *testing.T) {
			c, name := ddbtest.New(t)
			client = c
			names = append(names, name)
			if !strings.HasPrefix(name, "t_TestNewGivesEachTestItsOwnTable_sub") {
				t.Errorf("table name %q does not name the test", name)
			}
			// Empty at first, whatever the other subtest wrote.
			out, err := c.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(name)})
			if err != nil {
				t.Fatal(err)
			}
			if out.Count != 0 {
				t.Errorf("fresh table %s has %d items", name, out.Count)
			}
			if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(name), Item: key("W#1")}); err != nil {
				t.Fatal(err)
			}
		})
	}
	if len(names) != 2 || names[0] == names[1] {
		t.Fatalf("names = %v, want two different tables", names)
	}
	// Both were deleted when their subtests ended.
	for _, name := range names {
		_, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		var nf *types.ResourceNotFoundException
		if !errors.As(err, &nf) {
			t.Errorf("table %s still there after its test (err %v)", name, err)
		}
	}
}

func TestConfigAndEnvPointAtTheSameStore(t *testing.T) {
	_, name := ddbtest.New(t)
	cfg := ddbtest.Config(t, name)
	if cfg.Endpoint != ddbtest.Endpoint(t) || cfg.Table != name {
		t.Errorf("Config = %+v, want endpoint %s and table %s", cfg, ddbtest.Endpoint(t), name)
	}
	env := map[string]string{}
	for _, kv := range ddbtest.Env(t, name) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	fromEnv, err := table.ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(cfg, fromEnv); diff != "" {
		t.Errorf("ConfigFromEnv(Env()) mismatch (-want +got):\n%s", diff)
	}
	// A client built from the config, as a function server would, sees
	// the table (credentials and region do not matter: -sharedDb).
	other := cfg
	other.Region = "ap-south-1"
	c, err := table.NewClient(context.Background(), other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.DescribeTable(context.Background(), &dynamodb.DescribeTableInput{TableName: aws.String(name)}); err != nil {
		t.Errorf("client in another region does not see %s: %v", name, err)
	}
}

func TestNewWithMeter(t *testing.T) {
	var m table.Meter
	c, name := ddbtest.New(t, m.Option())
	before := m.Snapshot()
	out, err := c.PutItem(context.Background(), &dynamodb.PutItemInput{
		TableName: aws.String(name), Item: key("W#2"), ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
	})
	if err != nil {
		t.Fatal(err)
	}
	m.AddConsumed(out.ConsumedCapacity)
	d := m.Snapshot().Sub(before)
	if d.Calls != 1 || d.RoundTrips != 1 || d.ByOp["PutItem"] != 1 || d.Capacity != 1 {
		t.Errorf("meter after one PutItem = %+v, want 1 call, 1 round trip, 1 WCU", d)
	}
}
