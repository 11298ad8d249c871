package charge_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/charge"
	"github.com/sebelas/sebelas/internal/devtools/ddbtest"
	"github.com/sebelas/sebelas/internal/ledger"
	"github.com/sebelas/sebelas/internal/money"
	"github.com/sebelas/sebelas/internal/table"
)

// capacityDB records the capacity DynamoDB reports for each transaction.
type capacityDB struct {
	*dynamodb.Client
	meter *table.Meter
}

func (c capacityDB) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	out, err := c.Client.TransactWriteItems(ctx, in, opts...)
	if err == nil {
		c.meter.AddCapacity(out.ConsumedCapacity)
	}
	return out, err
}

// BenchmarkChargeHandler runs successful charges through the charge handler
// against DynamoDB Local and reports, per charge: DynamoDB round trips
// (target 1), the capacity DynamoDB Local reports, and the write capacity
// real DynamoDB would bill for the two items at their actual sizes
// (transactional writes cost 2 WCU per started KB per item; target <= 4),
// and separately the write of the charge's entry in the settlement GSI.
func BenchmarkChargeHandler(b *testing.B) {
	const payers = 64
	meter := &table.Meter{}
	db, name := ddbtest.New(b, meter.Option())
	l := ledger.New(capacityDB{db, meter}, name, nil)
	ctx := context.Background()
	for i := range payers {
		amt := money.Amount{Minor: 1 << 50, Currency: money.IDR} // never runs out
		if amt.Minor > 1_000_000_000_000_000 {
			amt.Minor = 1_000_000_000_000_000
		}
		if _, err := l.CashIn(ctx, fmt.Sprintf("seed-%d", i), fmt.Sprintf("w-bench-%02d", i), amt, "bench"); err != nil {
			b.Fatal(err)
		}
	}
	h := &charge.Handler{Ledger: l, Limits: money.DefaultLimits(), Verifier: testVerifier}
	var seq atomic.Int64
	var failed atomic.Int64
	before := meter.Snapshot()
	b.ReportAllocs()
	b.ResetTimer()
	b.SetParallelism(4) // DynamoDB Local serves concurrent requests; so does a function instance
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := seq.Add(1)
			req := events.ChargeRequested{
				ChargeID: fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), n), Marketplace: "tokopedia",
				MerchantID: "m-flagship", PayerWallet: fmt.Sprintf("w-bench-%02d", n%payers),
				Amount: 125_000, Currency: "IDR", DeviceID: "android-1", DeviceCountry: "ID",
				Description: "11.11 flash sale", RequestedAt: time.Now().UTC(),
			}
			ev, err := events.NewEvent(events.TypeChargeScreened, "/sebelas/fraud",
				events.ChargeScreened{Charge: req, Screening: events.Screening{Score: 10, Decision: events.DecisionAllow, Reasons: []string{}}})
			if err != nil {
				b.Fatal(err)
			}
			if err := testKeys.Sign(&ev, time.Now()); err != nil {
				b.Fatal(err)
			}
			reply, err := h.Handle(ctx, ev)
			if err != nil || reply.Type() != events.TypeChargeSucceeded {
				failed.Add(1)
			}
		}
	})
	b.StopTimer()
	d := meter.Snapshot().Sub(before)
	ok := float64(b.N) - float64(failed.Load())
	if ok <= 0 {
		b.Fatalf("no successful charge (%d failed)", failed.Load())
	}
	b.ReportMetric(float64(d.RoundTrips)/ok, "roundtrips/charge")
	b.ReportMetric(d.Capacity/ok, "localCU/charge")
	b.ReportMetric(float64(failed.Load())/float64(b.N), "failed/op")

	// Projected real WCU from the stored sizes of one charge and its payer.
	chargeItem := getRaw(b, db, name, "C#"+fmt.Sprintf("bench-%d", 0), "C")
	if chargeItem == nil {
		chargeItem = anyCharge(b, db, name)
	}
	balance := getRaw(b, db, name, "W#w-bench-00", "BAL#IDR")
	b.ReportMetric(float64(table.TransactWriteWCU(table.ItemBytes(chargeItem), table.ItemBytes(balance))), "realWCU/charge")
	// The charge's merchant-day GSI entry is written by DynamoDB after the
	// transaction. Counted at the transactional rate, as DynamoDB Local
	// reports it: an upper bound.
	b.ReportMetric(float64(table.TransactWriteWCU(table.ItemBytes(chargeItem))), "gsiWCU/charge")
}

func getRaw(b *testing.B, db *dynamodb.Client, name, pk, sk string) map[string]types.AttributeValue {
	out, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(name),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: sk}}})
	if err != nil {
		b.Fatal(err)
	}
	return out.Item
}

func anyCharge(b *testing.B, db *dynamodb.Client, name string) map[string]types.AttributeValue {
	out, err := db.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(name), Limit: aws.Int32(100)})
	if err != nil {
		b.Fatal(err)
	}
	for _, it := range out.Items {
		if sk, ok := it["sk"].(*types.AttributeValueMemberS); ok && sk.Value == "C" {
			return it
		}
	}
	b.Fatal("no charge item found")
	return nil
}
