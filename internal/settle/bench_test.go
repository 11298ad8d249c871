package settle_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/devtools/ddbtest"
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
		if err != nil || !out.Done || out.Units != merchants*chargesEach || out.Announced != merchants {
			b.Fatal(out, err)
		}
	}
	b.ReportMetric(float64(trips)/float64(b.N*merchants), "roundtrips/merchant")
	b.ReportMetric(float64(b.N*merchants)/elapsed.Seconds(), "merchants/s")
}

// BenchmarkSettleCost measures what settling costs in DynamoDB round trips
// against the day's activity: one merchant with one sale, one merchant with
// 10,000 sales, and 100 merchants with one sale each, each the only
// activity of its market-day. Run it once: `go test -run '^$' -bench
// SettleCost -benchtime 1x ./internal/settle`.
func BenchmarkSettleCost(b *testing.B) {
	for _, tc := range []struct {
		name               string
		merchants, charges int
	}{
		{"1_merchant_1_sale", 1, 1},
		{"1_merchant_10000_sales", 1, 10_000},
		{"100_merchants_1_sale", 100, 1},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var m table.Meter
			db, name := ddbtest.New(b, m.Option())
			ctx := context.Background()
			ph, _ := market.ByCode("PH")
			day := time.Date(2026, 11, 10, 3, 0, 0, 0, time.UTC)
			now := day
			l := ledger.New(db, name, func() time.Time { return now })
			if _, err := l.CashIn(ctx, "ci", "w-1", money.Amount{Minor: 1_000_000_000_000, Currency: money.PHP}, "bench"); err != nil {
				b.Fatal(err)
			}
			var wg sync.WaitGroup
			jobs := make(chan int)
			for range 16 {
				wg.Go(func() {
					for j := range jobs {
						req := events.ChargeRequested{ChargeID: fmt.Sprintf("c-%d", j), Marketplace: "mp",
							MerchantID: fmt.Sprintf("m-%d", j%tc.merchants), PayerWallet: "w-1", Amount: 100, Currency: "PHP"}
						if out, err := l.Charge(ctx, req, money.DefaultLimits()); err != nil || out.Status != ledger.ChargeSucceeded {
							b.Error(out, err)
						}
					}
				})
			}
			for j := range tc.merchants * tc.charges {
				jobs <- j
			}
			close(jobs)
			wg.Wait()
			now = day.AddDate(0, 0, 1)
			b.ResetTimer()
			var trips, txs int64
			for i := range b.N {
				s := settle.New(db, name, settle.Options{Now: func() time.Time { return now }})
				before := m.Snapshot()
				out, err := s.Run(ctx, ph, ph.LocalDate(day), settle.RunOptions{Restart: i > 0})
				d := m.Snapshot().Sub(before)
				if err != nil || !out.Done {
					b.Fatal(out, err)
				}
				if i == 0 {
					trips, txs = d.RoundTrips, int64(out.Batches)
					if out.Units != tc.merchants*tc.charges || out.Announced != tc.merchants {
						b.Fatalf("run %+v", out)
					}
				}
			}
			b.ReportMetric(float64(trips), "roundtrips/run")
			b.ReportMetric(float64(txs), "transactions/run")
			b.ReportMetric(float64(trips)/float64(tc.merchants), "roundtrips/merchant-day")
		})
	}
}
