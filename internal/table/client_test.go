package table_test

import (
	"context"
	"errors"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"

	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/table"
)

// fakeDynamo answers the i-th request (from 0) with replies[i], the last
// one repeated.
type reply struct {
	status int
	body   string
}

func fakeDynamo(t *testing.T, replies ...reply) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		i := int(n.Add(1)) - 1
		rep := replies[min(i, len(replies)-1)]
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		// DynamoDB sends a CRC32 of the body, which the SDK checks.
		w.Header().Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE([]byte(rep.body))), 10))
		w.WriteHeader(rep.status)
		io.WriteString(w, rep.body)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func fakeClient(t *testing.T, endpoint string, optFns ...func(*dynamodb.Options)) *dynamodb.Client {
	t.Helper()
	c, err := table.NewClient(context.Background(), table.Config{Endpoint: endpoint, Table: "sebelas", MaxAttempts: 3, TimeoutMs: 2000}, optFns...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const (
	okListTables   = `{"TableNames":[]}`
	internalError  = `{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"boom"}`
	okTransactions = `{}`
)

func canceled(codes ...string) string {
	var parts []string
	for _, c := range codes {
		parts = append(parts, `{"Code":"`+c+`"}`)
	}
	return `{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","message":"Transaction cancelled","CancellationReasons":[` + strings.Join(parts, ",") + `]}`
}

func TestMeterCountsEveryAttempt(t *testing.T) {
	srv, hits := fakeDynamo(t, reply{500, internalError}, reply{500, internalError}, reply{200, okListTables})
	var m table.Meter
	client := fakeClient(t, srv.URL, m.Option())
	if _, err := client.ListTables(context.Background(), &dynamodb.ListTablesInput{}); err != nil {
		t.Fatalf("ListTables: %v", err)
	}
	m.AddConsumed(&types.ConsumedCapacity{CapacityUnits: aws.Float64(0.5)})
	m.AddCapacity([]types.ConsumedCapacity{{CapacityUnits: aws.Float64(2)}, {CapacityUnits: aws.Float64(2)}, {}})
	m.AddConsumed(nil)
	want := table.MeterSnapshot{Calls: 1, RoundTrips: 3, Capacity: 4.5, ByOp: map[string]int64{"ListTables": 3}}
	if diff := cmp.Diff(want, m.Snapshot()); diff != "" {
		t.Errorf("Snapshot() mismatch (-want +got):\n%s", diff)
	}
	if got := hits.Load(); got != 3 {
		t.Errorf("server saw %d requests, want 3", got)
	}

	before := m.Snapshot()
	if _, err := client.ListTables(context.Background(), &dynamodb.ListTablesInput{}); err != nil {
		t.Fatalf("ListTables: %v", err)
	}
	want = table.MeterSnapshot{Calls: 1, RoundTrips: 1, ByOp: map[string]int64{"ListTables": 1}}
	if diff := cmp.Diff(want, m.Snapshot().Sub(before)); diff != "" {
		t.Errorf("Sub() mismatch (-want +got):\n%s", diff)
	}
}

func TestClientRetriesTransactionConflicts(t *testing.T) {
	tx := &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{{
		ConditionCheck: &types.ConditionCheck{
			TableName:           aws.String("sebelas"),
			Key:                 map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "a"}, "sk": &types.AttributeValueMemberS{Value: "b"}},
			ConditionExpression: aws.String("attribute_exists(pk)"),
		},
	}}}
	tests := []struct {
		name       string
		replies    []reply
		wantTrips  int64
		wantReason string // "" = success
	}{
		{"conflict then ok", []reply{{400, canceled("None", "TransactionConflict")}, {200, okTransactions}}, 2, ""},
		{"throttled then ok", []reply{{400, canceled("ThrottlingError")}, {200, okTransactions}}, 2, ""},
		{"conflicts to the end", []reply{{400, canceled("TransactionConflict")}}, 3, "dynamodb_transaction_conflict"},
		{"condition failed: no retry", []reply{{400, canceled("ConditionalCheckFailed", "None")}}, 1, "dynamodb_transaction_canceled"},
		{"condition failed beside a conflict: no retry", []reply{{400, canceled("ConditionalCheckFailed", "TransactionConflict")}}, 1, "dynamodb_transaction_conflict"},
		{"plain conflict exception", []reply{{400, `{"__type":"com.amazonaws.dynamodb.v20120810#TransactionConflictException","message":"x"}`}, {200, okTransactions}}, 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := fakeDynamo(t, tt.replies...)
			var m table.Meter
			client := fakeClient(t, srv.URL, m.Option())
			_, err := client.TransactWriteItems(context.Background(), tx)
			if got := m.Snapshot().RoundTrips; got != tt.wantTrips {
				t.Errorf("round trips = %d, want %d (err %v)", got, tt.wantTrips, err)
			}
			if tt.wantReason == "" {
				if err != nil {
					t.Fatalf("TransactWriteItems: %v", err)
				}
				return
			}
			if got := fault.ReasonOf(table.Classify(err)); got != tt.wantReason {
				t.Errorf("reason = %q, want %q (err %v)", got, tt.wantReason, err)
			}
		})
	}
}

func TestNewClientIsCheapAndOffline(t *testing.T) {
	// A closed port: construction must not touch the network.
	t0 := time.Now()
	c, err := table.NewClient(context.Background(), table.Config{Endpoint: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	d := time.Since(t0)
	t.Logf("NewClient took %s", d)
	if d > time.Second {
		t.Errorf("NewClient took %s, want well under 50ms", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = c.ListTables(ctx, &dynamodb.ListTablesInput{}, func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 })
	if got := fault.ReasonOf(table.Classify(err)); got != "dynamodb_unreachable" {
		t.Errorf("reason for a closed port = %q, want dynamodb_unreachable (err %v)", got, err)
	}
}

func TestNewClientRejectsBadConfig(t *testing.T) {
	_, err := table.NewClient(context.Background(), table.Config{Endpoint: "localhost:8000"})
	if err == nil || !strings.Contains(err.Error(), "not an http(s) URL") {
		t.Errorf("NewClient(bad endpoint) error = %v", err)
	}
	_, err = table.NewClient(context.Background(), table.Config{MaxAttempts: 99})
	if err == nil {
		t.Error("NewClient(MaxAttempts 99) succeeded")
	}
	var fe *fault.Error
	if errors.As(err, &fe) {
		t.Errorf("config error should not be a fault: %v", err)
	}
}
