package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/sebelas/sebelas/internal/market"
	"github.com/sebelas/sebelas/internal/money"
	"github.com/sebelas/sebelas/internal/recon"
	"github.com/sebelas/sebelas/internal/settle"
	"github.com/sebelas/sebelas/internal/table"
)

// runSettlePayouts writes the payout file of a market-day whose settlement
// run is done: once per run pass (docs/reconciliation.md, "Payout files").
func runSettlePayouts(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("settle payouts", "--market ID --date 2026-11-11 --out DIR")
	code := fs.String("market", "", "market: ID PH MY TH BD PK IN (required)")
	date := fs.String("date", "", "local business date YYYY-MM-DD (required)")
	dir := fs.String("out", "", "directory of the payout files (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *code == "" || *date == "" || *dir == "" {
		fs.Usage()
		return errors.New("--market, --date and --out are required")
	}
	m, err := market.ByCode(*code)
	if err != nil {
		return err
	}
	tc, err := table.ConfigFromEnv(os.Getenv)
	if err != nil {
		return err
	}
	db, err := table.NewClient(ctx, tc)
	if err != nil {
		return err
	}
	return writePayouts(ctx, settle.New(db, tc.Table, settle.Options{}), m, *date, *dir, stdout)
}

func writePayouts(ctx context.Context, s *settle.Store, m market.Market, date, dir string, stdout io.Writer) error {
	pf, err := recon.WritePayouts(ctx, s, m, date, dir)
	if err != nil {
		return err
	}
	f := func(v int64) string { return money.Amount{Minor: v, Currency: m.Currency}.String() }
	state := "written"
	if pf.AlreadyWritten {
		state = "already written (same content), nothing written"
	}
	fmt.Fprintf(stdout, "payout file %s: %s\n  pass %d, %d transfers, total %s\n", pf.Path, state, pf.Pass, len(pf.Lines), f(pf.Total))
	for _, o := range pf.Owed {
		fmt.Fprintf(stdout, "  owed by %s: %s (%s is below what was paid): not a transfer, collect it\n", o.MerchantID, f(-o.Amount), o.SettlementIDs[0])
	}
	return nil
}

// reconcilePayouts reads the bank's report on a market-day's payout files
// and matches it with the day's settlements.
func reconcilePayouts(ctx context.Context, db *settle.Store, code, date string, in io.Reader) (recon.Report, error) {
	if code == "" || date == "" {
		return recon.Report{}, errors.New("payouts: --market and --date (its business date) are required")
	}
	m, err := market.ByCode(code)
	if err != nil {
		return recon.Report{}, err
	}
	rep, err := recon.ReadPayoutReport(in)
	if err != nil {
		return recon.Report{}, err
	}
	return recon.Payouts(ctx, db, m, date, rep)
}
