package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/sebelas/sebelas/internal/market"
	"github.com/sebelas/sebelas/internal/money"
	"github.com/sebelas/sebelas/internal/settle"
	"github.com/sebelas/sebelas/internal/table"
)

// runSettleRun settles (or re-settles) one market's business day in this
// process, the way the settle function does on its tick: merchants already
// settled are replayed, never credited again; merchants a failed run missed
// are settled now.
func runSettleRun(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("settle run", "--market ID [--date 2026-11-11] [--sink URL] [--payouts DIR]")
	code := fs.String("market", "", "market: ID PH MY TH BD PK IN (required)")
	date := fs.String("date", "", "local business date YYYY-MM-DD (default: yesterday in the market's zone)")
	sink := fs.String("sink", os.Getenv(settle.EnvSink), "publish settlement.completed to this Broker ingress URL (default $K_SINK; empty: print only)")
	payouts := fs.String("payouts", "", "when the run is done, write its payout file into this directory (once per pass)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *code == "" {
		fs.Usage()
		return errors.New("--market is required")
	}
	m, err := market.ByCode(*code)
	if err != nil {
		return err
	}
	now := time.Now()
	if *date == "" {
		*date = settle.PreviousDate(m, now)
	}
	if err := settle.CheckClosed(m, *date, now); err != nil {
		return err
	}
	var pub settle.Publisher
	if *sink != "" {
		if pub, err = settle.NewHTTPPublisher(*sink); err != nil {
			return err
		}
	}
	tc, err := table.ConfigFromEnv(os.Getenv)
	if err != nil {
		return err
	}
	db, err := dynamoClient(ctx, tc)
	if err != nil {
		return err
	}
	s := settle.New(db, tc.Table, settle.Options{})
	fmt.Fprintf(stdout, "settling %s %s (%s, %s)\n", m.Code, *date, m.Zone, m.Currency)
	var mu sync.Mutex
	var net int64
	onMerchant := func(ctx context.Context, r settle.Result) error {
		if pub != nil {
			ev, err := settle.CompletedEvent(r)
			if err != nil {
				return err
			}
			if err := pub.Publish(ctx, ev); err != nil {
				return err
			}
		}
		mu.Lock()
		defer mu.Unlock()
		net += r.Net
		f := func(v int64) string { return money.Amount{Minor: v, Currency: m.Currency}.String() }
		fmt.Fprintf(stdout, "  %s v%d %-40s charges %6d %-22s refunds %5d %-20s (late: %d charges, %d refunds) net %s\n",
			r.SettlementID, r.Version, r.MerchantID, r.ChargesCount, f(r.ChargesTotal), r.RefundsCount,
			f(r.RefundsTotal), r.LateChargesCount, r.LateRefundsCount, f(r.Net))
		return nil
	}
	out, err := s.Run(ctx, m, *date, settle.RunOptions{Restart: true, OnMerchant: onMerchant})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "pass %d: %d units settled now in %d transactions; %d settlements announced, their nets total %s\n",
		out.Pass, out.Units, out.Batches, out.Announced, money.Amount{Minor: net, Currency: m.Currency})
	if *payouts != "" && out.Done {
		return writePayouts(ctx, s, m, *date, *payouts, stdout)
	}
	return nil
}
