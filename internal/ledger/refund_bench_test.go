package ledger_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/devtools/ddbtest"
	"github.com/sebelas/sebelas/internal/ledger"
	"github.com/sebelas/sebelas/internal/money"
	"github.com/sebelas/sebelas/internal/table"
)

// BenchmarkRefund measures one uncontended partial refund against DynamoDB
// Local: the charge read, the first merchant-day index write (once per
// process), the transaction; it reports DynamoDB round trips per refund.
func BenchmarkRefund(b *testing.B) {
	var m table.Meter
	db, name := ddbtest.New(b, m.Option())
	s := ledger.New(db, name, func() time.Time { return time.Date(2026, 11, 12, 3, 0, 0, 0, time.UTC) })
	ctx := context.Background()
	if _, err := s.CashIn(ctx, "ci", "w-bench", money.Amount{Minor: 1_000_000_00, Currency: money.PHP}, "bench"); err != nil {
		b.Fatal(err)
	}
	req := events.ChargeRequested{ChargeID: "ch-bench", Marketplace: "mp", MerchantID: "m-bench",
		PayerWallet: "w-bench", Amount: 9_000_000, Currency: "PHP"}
	if out, err := s.Charge(ctx, req, money.DefaultLimits()); err != nil || out.Status != ledger.ChargeSucceeded {
		b.Fatal(out, err)
	}
	before := m.Snapshot()
	b.ResetTimer()
	for i := range b.N {
		out, err := s.Refund(ctx, events.RefundRequested{RefundID: fmt.Sprintf("rf-%d", i), ChargeID: "ch-bench",
			Marketplace: "mp", Amount: 1, Reason: "bench"})
		if err != nil || out.Status != ledger.RefundSucceeded {
			b.Fatal(out, err)
		}
	}
	b.StopTimer()
	d := m.Snapshot().Sub(before)
	b.ReportMetric(float64(d.RoundTrips)/float64(b.N), "roundtrips/refund")
}
