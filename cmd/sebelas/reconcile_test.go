package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/devtools/ddbtest"
	"github.com/sebelas/sebelas/internal/ledger"
	"github.com/sebelas/sebelas/internal/money"
)

func TestReconcileCashInsBinary(t *testing.T) {
	db, tableName := ddbtest.New(t)
	endpoint := ddbtest.Endpoint(t)
	l := ledger.New(db, tableName, nil)
	if _, err := l.CashIn(context.Background(), "k-cli-1", "w-cli", money.Amount{Minor: 5_000, Currency: money.MYR}, "bank"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "good.csv")
	if err := os.WriteFile(good, []byte("bank_ref,cashin_id,amount,currency,booked_at\nMBB-1,k-cli-1,5000,MYR,2026-11-11T01:00:00Z\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A wide period: the cash-in was written at the wall clock's time.
	out, err := runBinary(t, endpoint, tableName, "reconcile", "--source", "cashins", "--statement", good,
		"--from", "2000-01-01T00:00:00Z", "--to", "2000-01-31T00:00:00Z")
	if err != nil || !strings.Contains(out, "matched: 1") || !strings.Contains(out, "result: OK") {
		t.Fatalf("good statement: %v\n%s", err, out)
	}
	bad := filepath.Join(dir, "bad.csv")
	if err := os.WriteFile(bad, []byte("bank_ref,cashin_id,amount,currency,booked_at\nMBB-1,k-cli-1,5001,MYR,2026-11-11T01:00:00Z\nMBB-2,k-cli-2,10,MYR,yesterday\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = runBinary(t, endpoint, tableName, "reconcile", "--source", "cashins", "--statement", bad, "--date", "2000-01-01")
	if err == nil || !strings.Contains(out, "k-cli-1 (line 2)") || !strings.Contains(out, "line 3: booked_at") || !strings.Contains(out, "result: DISAGREE") {
		t.Fatalf("bad statement: %v\n%s", err, out)
	}
}

func TestSettlePayoutsBinary(t *testing.T) {
	db, tableName := ddbtest.New(t)
	endpoint := ddbtest.Endpoint(t)
	at := time.Date(2026, 11, 10, 4, 0, 0, 0, time.UTC) // noon in Manila
	l := ledger.New(db, tableName, func() time.Time { return at })
	ctx := context.Background()
	if _, err := l.CashIn(ctx, "k-p-1", "w-p", money.Amount{Minor: 1_000_000, Currency: money.PHP}, "bank"); err != nil {
		t.Fatal(err)
	}
	for i, m := range []string{"m-one", "m-two"} {
		out, err := l.Charge(ctx, events.ChargeRequested{ChargeID: "c-p-" + m, Marketplace: "mp", MerchantID: m, PayerWallet: "w-p",
			Amount: int64(10_000 * (i + 1)), Currency: "PHP", RequestedAt: at}, money.DefaultLimits())
		if err != nil || out.Status != ledger.ChargeSucceeded {
			t.Fatalf("charge: %+v, %v", out, err)
		}
	}
	dir := t.TempDir()
	out, err := runBinary(t, endpoint, tableName, "settle", "run", "--market", "PH", "--date", "2026-11-10", "--payouts", dir)
	if err != nil || !strings.Contains(out, "2 transfers, total PHP 300.00") {
		t.Fatalf("settle run --payouts: %v\n%s", err, out)
	}
	file := filepath.Join(dir, "payouts-PH-2026-11-10-p1.csv")
	b, err := os.ReadFile(file)
	if want := "merchant_id,currency,amount,settlement_ids\nm-one,PHP,10000,S-m-one-2026-11-10-PHP\nm-two,PHP,20000,S-m-two-2026-11-10-PHP\n"; err != nil || string(b) != want {
		t.Fatalf("payout file: %v\n%s", err, b)
	}
	out, err = runBinary(t, endpoint, tableName, "settle", "payouts", "--market", "PH", "--date", "2026-11-10", "--out", dir)
	if err != nil || !strings.Contains(out, "already written") {
		t.Fatalf("settle payouts again: %v\n%s", err, out)
	}
	report := filepath.Join(dir, "report.csv")
	if err := os.WriteFile(report, []byte("merchant_id,currency,amount,settlement_ids,status,bank_ref\n"+
		"m-one,PHP,10000,S-m-one-2026-11-10-PHP,paid,BPI-1\nm-two,PHP,20000,S-m-two-2026-11-10-PHP,rejected,BPI-2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = runBinary(t, endpoint, tableName, "reconcile", "--source", "payouts", "--market", "PH", "--date", "2026-11-10", "--statement", report)
	if err == nil || !strings.Contains(out, "status_mismatch") || !strings.Contains(out, "S-m-two-2026-11-10-PHP (line 3)") || !strings.Contains(out, "matched: 1") {
		t.Fatalf("reconcile payouts: %v\n%s", err, out)
	}
}
