package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/google/uuid"

	"github.com/sebelas/sebelas/internal/ledger"
	"github.com/sebelas/sebelas/internal/money"
	"github.com/sebelas/sebelas/internal/table"
)

func openLedger(ctx context.Context) (*ledger.Store, table.Config, error) {
	tc, err := table.ConfigFromEnv(os.Getenv)
	if err != nil {
		return nil, tc, err
	}
	db, err := dynamoClient(ctx, tc)
	if err != nil {
		return nil, tc, err
	}
	return ledger.New(db, tc.Table, nil), tc, nil
}

func runTableCreate(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("table create", "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	tc, err := table.ConfigFromEnv(os.Getenv)
	if err != nil {
		return err
	}
	db, err := dynamoClient(ctx, tc)
	if err != nil {
		return err
	}
	if err := table.Create(ctx, db, tc.Table); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "table %s ready\n", tc.Table)
	return nil
}

func runWalletCredit(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("wallet credit", "--wallet W --amount 125.50 --currency PHP [--id CASHIN_ID]")
	wallet := fs.String("wallet", "", "wallet id (required)")
	amount := fs.String("amount", "", "amount in major units, e.g. 125.50 PHP or 50000 IDR (required)")
	cur := fs.String("currency", "", "ISO currency: IDR PHP MYR THB BDT PKR INR (required)")
	id := fs.String("id", "", "cash-in id; a repeat with the same id credits once (default: a new uuid)")
	source := fs.String("source", "cli", "where the money came from (bank, card, agent, cli)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *wallet == "" || *amount == "" || *cur == "" {
		fs.Usage()
		return errors.New("--wallet, --amount and --currency are required")
	}
	c, err := money.ParseCurrency(*cur)
	if err != nil {
		return err
	}
	amt, err := money.Parse(*amount, c)
	if err != nil {
		return err
	}
	if *id == "" {
		*id = uuid.NewString()
	}
	l, _, err := openLedger(ctx)
	if err != nil {
		return err
	}
	replayed, err := l.CashIn(ctx, *id, *wallet, amt, *source)
	if err != nil {
		return err
	}
	b, _, err := l.GetBalance(ctx, *wallet, c)
	if err != nil {
		return err
	}
	verb := "credited"
	if replayed {
		verb = "already credited (same id), nothing changed:"
	}
	fmt.Fprintf(stdout, "%s %s to %s (cash-in %s); balance %s\n", verb, amt, *wallet, *id, money.Amount{Minor: b.Balance, Currency: c})
	return nil
}

func runWalletShow(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("wallet show", "--wallet W")
	wallet := fs.String("wallet", "", "wallet id (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *wallet == "" {
		fs.Usage()
		return errors.New("--wallet is required")
	}
	l, _, err := openLedger(ctx)
	if err != nil {
		return err
	}
	bs, err := l.Balances(ctx, *wallet)
	if err != nil {
		return err
	}
	if len(bs) == 0 {
		return fmt.Errorf("wallet %s has no balances", *wallet)
	}
	fmt.Fprintf(stdout, "wallet %s\n", *wallet)
	for _, b := range bs {
		fmt.Fprintf(stdout, "  %-3s balance %-20s held %-20s %s\n", b.Currency,
			money.Amount{Minor: b.Balance, Currency: b.Currency}, money.Amount{Minor: b.Held, Currency: b.Currency}, b.Status)
	}
	return nil
}
