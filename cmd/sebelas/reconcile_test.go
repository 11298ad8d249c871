package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sebelas/sebelas/internal/ddbtest"
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
