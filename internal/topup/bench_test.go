package topup_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/devtools/ddbtest"
	"github.com/sebelas/sebelas/internal/ledger"
	"github.com/sebelas/sebelas/internal/money"
	"github.com/sebelas/sebelas/internal/msisdn"
	"github.com/sebelas/sebelas/internal/operator"
	"github.com/sebelas/sebelas/internal/signing"
	"github.com/sebelas/sebelas/internal/table"
	"github.com/sebelas/sebelas/internal/topup"
)

// BenchmarkTopupSucceeds runs successful top-ups through the handler
// against DynamoDB Local and the simulator (no operator latency) and
// reports per top-up: DynamoDB round trips, operator calls, and the write
// capacity real DynamoDB would bill for the two transactions (hold and
// capture, 2 WCU per started KB per item) at the items' actual sizes.
func BenchmarkTopupSucceeds(b *testing.B) {
	const payers = 64
	meter := &table.Meter{}
	db, name := ddbtest.New(b, meter.Option())
	l := ledger.New(db, name, nil)
	ctx := context.Background()
	for i := range payers {
		if _, err := l.CashIn(ctx, fmt.Sprintf("seed-%d", i), fmt.Sprintf("w-bench-%02d", i),
			money.Amount{Minor: 1_000_000_000_000_000, Currency: money.IDR}, "bench"); err != nil {
			b.Fatal(err)
		}
	}
	sim, err := operator.NewSimulator(operator.SimConfig{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	defer srv.Close()
	adapter, err := operator.NewHTTP(srv.URL, "")
	if err != nil {
		b.Fatal(err)
	}
	keys := signing.NewDevKeys()
	if err != nil {
		b.Fatal(err)
	}
	breakers := operator.NewBreakers(operator.BreakerConfig{Failures: 5, OpenMs: 30_000}, nil)
	h := &topup.Handler{
		Store: topup.NewStore(db, name, l, nil), Catalog: topup.DefaultCatalog(),
		Operator: operator.Guard(adapter, breakers), Breakers: breakers, Verifier: keys.Verifier(),
		Config: topup.DefaultConfig(), Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	run := time.Now().UnixNano()
	var seq, failed atomic.Int64
	before := meter.Snapshot()
	b.ReportAllocs()
	b.ResetTimer()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := seq.Add(1)
			req := events.TopupRequested{
				TopupID: fmt.Sprintf("bench-%d-%d", run, n), PayerWallet: fmt.Sprintf("w-bench-%02d", n%payers),
				MSISDN: "0812-3456-7890", ProductID: "tsel-pulsa-50k", Currency: "IDR", RequestedAt: time.Now().UTC(),
			}
			ev, err := events.NewEvent(events.TypeTopupScreened, "/sebelas/fraud",
				events.TopupScreened{Topup: req, Screening: events.Screening{Decision: events.DecisionAllow, Reasons: []string{}}})
			if err != nil {
				b.Fatal(err)
			}
			_ = keys.Sign(&ev, time.Now())
			reply, err := h.Handle(ctx, ev)
			if err != nil || reply.Type() != events.TypeTopupSucceeded {
				failed.Add(1)
			}
		}
	})
	b.StopTimer()
	d := meter.Snapshot().Sub(before)
	ok := float64(b.N) - float64(failed.Load())
	if ok <= 0 {
		b.Fatalf("no successful top-up (%d failed)", failed.Load())
	}
	b.ReportMetric(float64(d.RoundTrips)/ok, "roundtrips/topup")
	b.ReportMetric(float64(sim.Stats().Submits)/ok, "operatorcalls/topup")
	b.ReportMetric(float64(failed.Load())/float64(b.N), "failed/op")
	item := getItem(b, db, name, "T#"+fmt.Sprintf("bench-%d-1", run), "T")
	balance := getItem(b, db, name, "W#w-bench-01", "BAL#IDR")
	b.ReportMetric(float64(2*table.TransactWriteWCU(table.ItemBytes(item), table.ItemBytes(balance))), "realWCU/topup")
	b.ReportMetric(float64(table.ItemBytes(item)), "topupItemBytes")
}

func getItem(b *testing.B, db *dynamodb.Client, name, pk, sk string) map[string]types.AttributeValue {
	out, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(name),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: sk}}})
	if err != nil || len(out.Item) == 0 {
		b.Fatalf("item %s/%s: %v", pk, sk, err)
	}
	return out.Item
}

// BenchmarkParseMSISDN: validation, normalisation and operator detection of
// one number, CPU only.
func BenchmarkParseMSISDN(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := msisdn.Parse("0812-3456-7890", "ID"); err != nil {
			b.Fatal(err)
		}
	}
}
