package settle_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/ddbtest"
	"github.com/sebelas/sebelas/internal/ledger"
	"github.com/sebelas/sebelas/internal/market"
	"github.com/sebelas/sebelas/internal/money"
	"github.com/sebelas/sebelas/internal/settle"
	"github.com/sebelas/sebelas/internal/table"
)

// BenchmarkSettleMarketDay settles a market-day of 40 merchants with 10
// charges each against DynamoDB Local (a fresh day per iteration) and
// reports round trips per merchant and merchants per second.
func BenchmarkSettleMarketDay(b *testing.B) {
	const merchants, chargesEach = 40, 10
	var m table.Meter
	db, name := ddbtest.New(b, m.Option())
	ctx := context.Background()
	th, _ := market.ByCode("TH")
	day0 := time.Date(2026, 11, 1, 5, 0, 0, 0, time.UTC)
	now := day0
	l := ledger.New(db, name, func() time.Time { return now })
	if _, err := l.CashIn(ctx, "ci", "w-1", money.Amount{Minor: 1_000_000_000_000, Currency: money.THB}, "bench"); err != nil {
		b.Fatal(err)
	}
	var trips int64
	var elapsed time.Duration
	for i := range b.N {
		day := day0.AddDate(0, 0, i)
		now = day
		for j := range merchants * chargesEach {
			req := events.ChargeRequested{ChargeID: fmt.Sprintf("c-%d-%d", i, j), Marketplace: "mp",
				MerchantID: fmt.Sprintf("m-%d", j%merchants), PayerWallet: "w-1", Amount: 100, Currency: "THB"}
			if out, err := l.Charge(ctx, req, money.DefaultLimits()); err != nil || out.Status != ledger.ChargeSucceeded {
				b.Fatal(out, err)
			}
		}
		now = day.AddDate(0, 0, 1)
		s := settle.New(db, name, settle.Options{Now: func() time.Time { return now }})
		before := m.Snapshot()
		start := time.Now()
		out, err := s.Run(ctx, th, th.LocalDate(day), settle.RunOptions{})
		elapsed += time.Since(start)
		trips += m.Snapshot().Sub(before).RoundTrips
		if err != nil || !out.Done || out.Settled != merchants {
			b.Fatal(out, err)
		}
	}
	b.ReportMetric(float64(trips)/float64(b.N*merchants), "roundtrips/merchant")
	b.ReportMetric(float64(b.N*merchants)/elapsed.Seconds(), "merchants/s")
}
