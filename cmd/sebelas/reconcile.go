package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/sebelas/sebelas/internal/ledger"
	"github.com/sebelas/sebelas/internal/operator"
	"github.com/sebelas/sebelas/internal/recon"
	"github.com/sebelas/sebelas/internal/settle"
	"github.com/sebelas/sebelas/internal/table"
	"github.com/sebelas/sebelas/internal/topup"
)

// statementBytesMax bounds a statement file: LinesMax lines of ~250 bytes.
const statementBytesMax = 4 << 30

// runReconcile matches a partner's statement with the ledger for a period
// (docs/reconciliation.md) and exits non-zero when they disagree or a
// line could not be read.
func runReconcile(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("reconcile", "--source topups|cashins|payouts --statement FILE (--date 2026-11-11 | --from T --to T) [--format csv|jsonl] [--market ID]")
	source := fs.String("source", "", "topups (the aggregator's statement), cashins (a bank's cash-in statement) or payouts (the bank's report on a market-day's payout files)")
	path := fs.String("statement", "", "the statement file (- for stdin)")
	format := fs.String("format", operator.StatementFormatCSV, "topups only: csv or jsonl")
	date := fs.String("date", "", "the period is this UTC day (topups, cashins) or the market's business date (payouts)")
	from := fs.String("from", "", "start of the period, RFC 3339 (instead of --date)")
	to := fs.String("to", "", "end of the period, RFC 3339, exclusive")
	ttlMs := fs.Int("ttl-ms", topup.RequestTTLMsDefault, "topups: the top-up function's operator request TTL (SEBELAS_TOPUP_REQUEST_TTL_MS)")
	edgeMs := fs.Int("edge-ms", 10*60_000, "cashins: how long after the bank books money the ledger may credit it")
	marketID := fs.String("market", "", "payouts: the market")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *path == "" {
		return errors.New("--statement is required")
	}
	var in io.Reader = os.Stdin
	if *path != "-" {
		f, err := os.Open(*path)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	in = io.LimitReader(in, statementBytesMax)
	tc, err := table.ConfigFromEnv(os.Getenv)
	if err != nil {
		return err
	}
	db, err := table.NewClient(ctx, tc)
	if err != nil {
		return err
	}
	l := ledger.New(db, tc.Table, nil)
	var rep recon.Report
	switch *source {
	case "topups", "cashins":
		start, end, err := period(*date, *from, *to)
		if err != nil {
			return err
		}
		if *source == "topups" {
			if *ttlMs < 1 {
				return errors.New("--ttl-ms must be positive")
			}
			st, err := recon.ReadTopupStatement(in, *format)
			if err != nil {
				return err
			}
			rep, err = recon.Topups(ctx, topup.NewStore(db, tc.Table, l, nil), st,
				recon.TopupOptions{From: start, To: end, RequestTTL: time.Duration(*ttlMs) * time.Millisecond})
			if err != nil {
				return err
			}
		} else {
			if *edgeMs < 0 {
				return errors.New("--edge-ms must not be negative")
			}
			st, err := recon.ReadCashInStatement(in)
			if err != nil {
				return err
			}
			rep, err = recon.CashIns(ctx, l, db, st, recon.CashInOptions{From: start, To: end, Edge: time.Duration(*edgeMs) * time.Millisecond})
			if err != nil {
				return err
			}
		}
	case "payouts":
		rep, err = reconcilePayouts(ctx, settle.New(db, tc.Table, settle.Options{}), *marketID, *date, in)
		if err != nil {
			return err
		}
	default:
		return fmt.Errorf("--source %q: want topups, cashins or payouts", *source)
	}
	if err := rep.Write(stdout); err != nil {
		return err
	}
	if !rep.OK() {
		return fmt.Errorf("reconcile %s: %d findings, %d lines skipped", *source, rep.FindingsTotal, rep.Skipped.Total)
	}
	return nil
}

// period is a UTC day or an explicit [from, to).
func period(date, from, to string) (time.Time, time.Time, error) {
	if date != "" {
		if from != "" || to != "" {
			return time.Time{}, time.Time{}, errors.New("--date or --from/--to, not both")
		}
		d, err := time.Parse(time.DateOnly, date)
		if err != nil {
			return time.Time{}, time.Time{}, fmt.Errorf("--date %q: want YYYY-MM-DD", date)
		}
		return d, d.Add(24 * time.Hour), nil
	}
	start, err1 := time.Parse(time.RFC3339, from)
	end, err2 := time.Parse(time.RFC3339, to)
	if err1 != nil || err2 != nil || !start.Before(end) || end.Sub(start) > 31*24*time.Hour {
		return time.Time{}, time.Time{}, errors.New("want --date, or --from < --to (RFC 3339, at most 31 days apart)")
	}
	return start, end, nil
}
