package fraud

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"

	"github.com/sebelas/sebelas/internal/devtools/ddbtest"
	"github.com/sebelas/sebelas/internal/ledger"
	"github.com/sebelas/sebelas/internal/money"
	"github.com/sebelas/sebelas/internal/table"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

func newDynamoStore(t testing.TB, optFns ...func(*dynamodb.Options)) (*DynamoStore, *dynamodb.Client, string) {
	t.Helper()
	db, name := ddbtest.New(t, optFns...)
	l := ledger.New(db, name, nil)
	if _, err := l.CashIn(context.Background(), "ci-w-1", "w-1", money.Amount{Minor: testBalance, Currency: money.PHP}, "test"); err != nil {
		t.Fatal(err)
	}
	return NewDynamoStore(db, name, l), db, name
}

// TestFeaturesDynamoDB runs the feature table against DynamoDB Local: the
// stored counters give what the in-memory store gives, step by step.
func TestFeaturesDynamoDB(t *testing.T) {
	for _, tt := range featureCases {
		t.Run(tt.name, func(t *testing.T) {
			store, _, _ := newDynamoStore(t)
			mem := newTestMemoryStore()
			for i, s := range tt.steps {
				got, err := store.Observe(context.Background(), s.payment(i), s.wantBalance)
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				want, _ := mem.Observe(context.Background(), s.payment(i), s.wantBalance)
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("step %d: DynamoDB against memory (-want +got):\n%s", i, diff)
				}
				if i == len(tt.steps)-1 {
					if diff := cmp.Diff(tt.want, got, velocityOnly); diff != "" {
						t.Errorf("Observed (-want +got):\n%s", diff)
					}
				}
			}
		})
	}
}

// TestFlowsDynamoDB runs the flow table against DynamoDB Local, comparing
// every step with the in-memory store.
func TestFlowsDynamoDB(t *testing.T) {
	for _, tt := range flowCases {
		t.Run(tt.name, func(t *testing.T) {
			store, _, _ := newDynamoStore(t)
			mem := newTestMemoryStore()
			var got Observed
			for i, s := range tt.steps {
				var err error
				if got, err = store.Observe(context.Background(), s.payment(i), s.wantBalance); err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				want, _ := mem.Observe(context.Background(), s.payment(i), s.wantBalance)
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("step %d: DynamoDB against memory (-want +got):\n%s", i, diff)
				}
			}
			if diff := cmp.Diff(tt.want, flowsOf(got)); diff != "" {
				t.Errorf("flows (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLongSequenceMatchesMemory pays 400 times at irregular gaps (bursts,
// minutes, hours, days; slot reuse in every ring; redeliveries; new devices
// and payees) and compares every step with the in-memory store, then the
// item with the memory state.
func TestLongSequenceMatchesMemory(t *testing.T) {
	store, db, name := newDynamoStore(t)
	mem := newTestMemoryStore()
	gaps := []time.Duration{3 * time.Second, 610 * time.Second, 40 * time.Minute, 305 * time.Minute, 62 * time.Hour, 17 * time.Second, 9 * time.Hour, 1220 * time.Second}
	at := time.Duration(0)
	for i := range 400 {
		at += gaps[(i*5+i/7)%len(gaps)]
		s := step{at: at, amount: int64(100 + i), device: fmt.Sprintf("dev-%d", i/50), payee: fmt.Sprintf("m-%d", i%70)}
		if i%13 == 0 {
			s.event = fmt.Sprintf("/test|%d", i-1) // a redelivery of the previous payment
		}
		if i%9 == 0 {
			s.country = "SG"
		}
		got, err := store.Observe(context.Background(), s.payment(i), i%5 == 0)
		if err != nil {
			t.Fatalf("payment %d: %v", i, err)
		}
		want, _ := mem.Observe(context.Background(), s.payment(i), i%5 == 0)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("payment %d (at %s): DynamoDB against memory (-want +got):\n%s", i, at, diff)
		}
	}
	out, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(name), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: walletPK("w-1", "PHP")}, "sk": &types.AttributeValueMemberS{Value: velocitySK}}})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := decodeWallet(out.Item)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(*mem.wallets[walletPK("w-1", "PHP")], stored, cmp.AllowUnexported(walletState{}, slot{}, flowSlot{})); diff != "" {
		t.Errorf("stored item against memory state (-want +got):\n%s", diff)
	}
	if n := table.ItemBytes(out.Item); n > 1024 {
		t.Errorf("counters item is %d bytes: more than 1 WCU per write", n)
	} else {
		t.Logf("counters item after 400 payments: %d bytes", n)
	}
}

// TestOneRoundTrip checks the promise of the design: a payment of a known
// wallet from a known device costs exactly ONE DynamoDB round trip, an
// UpdateItem.
func TestOneRoundTrip(t *testing.T) {
	var meter table.Meter
	store, _, _ := newDynamoStore(t, meter.Option())
	ctx := context.Background()
	// After the first payment, the wallet is past its first hour (when
	// its device item is consulted too).
	steps := []step{{}, {at: 2 * time.Hour}, {at: 2*time.Hour + 20*time.Second}, {at: 150 * time.Minute, payee: "m-2"},
		{at: 5 * time.Hour, country: "SG"}, {at: 5*time.Hour + time.Second, kind: KindTopup, payee: "639170000000"}}
	for i, s := range steps {
		before := meter.Snapshot()
		if _, err := store.Observe(ctx, s.payment(i), false); err != nil {
			t.Fatal(err)
		}
		got := meter.Snapshot().Sub(before)
		want := map[string]int64{"UpdateItem": 1}
		if i == 0 {
			want["UpdateItem"] = 2 // a new wallet with a device: the device item too
		}
		if got.RoundTrips != want["UpdateItem"] || !cmp.Equal(want, got.ByOp) {
			t.Errorf("payment %d: %d round trips %v, want %v", i, got.RoundTrips, got.ByOp, want)
		}
	}
}

// TestTransferRoundTrips: a transfer between wallets costs the payer's
// update plus the receiver's, in parallel; a charge to a merchant stays at
// one.
func TestTransferRoundTrips(t *testing.T) {
	var meter table.Meter
	store, _, _ := newDynamoStore(t, meter.Option())
	ctx := context.Background()
	steps := []step{{}, {at: 2 * time.Hour, payee: "w-2", typ: TypeTransfer}, {at: 3 * time.Hour, payee: "m-1", typ: TypePayment}}
	for i, s := range steps {
		before := meter.Snapshot()
		if _, err := store.Observe(ctx, s.payment(i), false); err != nil {
			t.Fatal(err)
		}
		got := meter.Snapshot().Sub(before)
		want := []int64{2, 2, 1}[i] // the first: the device item of a new wallet
		if got.ByOp["UpdateItem"] != want || got.RoundTrips != want {
			t.Errorf("payment %d: %v, want %d UpdateItem", i, got.ByOp, want)
		}
	}
}

// TestConcurrentPaymentsAreAllCounted pays from many goroutines at once for
// one wallet, some landing on a stale slot, and checks no count is lost.
func TestConcurrentPaymentsAreAllCounted(t *testing.T) {
	store, _, _ := newDynamoStore(t)
	ctx := context.Background()
	// An old payment leaves data in the slot the burst will reuse.
	if _, err := store.Observe(ctx, step{event: "/old"}.payment(0), false); err != nil {
		t.Fatal(err)
	}
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := store.Observe(ctx, step{at: 610 * time.Second, event: fmt.Sprintf("/c|%d", i)}.payment(i), false)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if err != nil {
			failed++ // contention beyond writeAttemptsMax: the Broker retries
		}
	}
	o, err := store.Observe(ctx, step{at: 611 * time.Second, event: "/last"}.payment(99), false)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(n - failed + 1); o.Count1m != want || o.HistoryCount != want {
		t.Errorf("after %d concurrent payments (%d failed): count_1m %d history %d, want %d", n, failed, o.Count1m, o.HistoryCount, want)
	}
}

// BenchmarkObserveDynamoDB measures one payment's store step against
// DynamoDB Local and reports round trips per payment (target 1).
func BenchmarkObserveDynamoDB(b *testing.B) {
	var meter table.Meter
	store, _, _ := newDynamoStore(b, meter.Option())
	ctx := context.Background()
	// The wallet's first payment, two hours before: past its young hour.
	if _, err := store.Observe(ctx, step{at: -2 * time.Hour}.payment(-1), false); err != nil {
		b.Fatal(err)
	}
	before := meter.Snapshot()
	i := 0
	for b.Loop() {
		// One payment every 7 s: bursts and gaps, the same wallet.
		if _, err := store.Observe(ctx, step{at: time.Duration(i) * 7 * time.Second}.payment(i), false); err != nil {
			b.Fatal(err)
		}
		i++
	}
	d := meter.Snapshot().Sub(before)
	b.ReportMetric(float64(d.RoundTrips)/float64(i), "roundtrips/op")
}
