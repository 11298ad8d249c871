package fraudeval

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sebelas/sebelas/internal/fraud"
	"github.com/sebelas/sebelas/internal/market"
)

func small(seed uint64) Config {
	c := DefaultConfig(seed)
	c.UsersPerMarket, c.Days = 200, 2
	return c
}

func TestGenerateIsReproducible(t *testing.T) {
	a, err := Generate(small(7))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Generate(small(7))
	if diff := cmp.Diff(a, b); diff != "" {
		t.Fatalf("same seed, different traffic (-first +second):\n%s", diff)
	}
	c, _ := Generate(small(8))
	if cmp.Equal(a, c) {
		t.Error("another seed gives the same traffic")
	}
}

// TestGenerateShape: every market has every fraud pattern, payments are in
// time order, inside the period (warm-up before it), never above the
// payer's balance and never of zero amount.
func TestGenerateShape(t *testing.T) {
	cfg := small(3)
	txns, err := Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	end := cfg.Start.Add(time.Duration(cfg.Days) * 24 * time.Hour)
	seen := map[string]map[string]int{}
	for i, tx := range txns {
		p := tx.Payment
		if i > 0 && p.At.Before(txns[i-1].Payment.At) {
			t.Fatalf("payment %d is out of time order", i)
		}
		if p.Amount <= 0 || p.Amount > tx.Balance {
			t.Fatalf("payment %d: amount %d, balance %d", i, p.Amount, tx.Balance)
		}
		if tx.Warmup != p.At.Before(cfg.Start) || p.At.After(end) {
			t.Fatalf("payment %d at %s, warm-up %v", i, p.At, tx.Warmup)
		}
		if tx.Fraud != slices.Contains(FraudPatterns, tx.Pattern) {
			t.Fatalf("payment %d: fraud %v with pattern %s", i, tx.Fraud, tx.Pattern)
		}
		if seen[p.Currency] == nil {
			seen[p.Currency] = map[string]int{}
		}
		seen[p.Currency][tx.Pattern]++
	}
	for _, m := range market.All() {
		for _, pattern := range append(FraudPatterns, PatternLegit, PatternLegitNewUser, PatternLegitFestival) {
			if seen[string(m.Currency)][pattern] == 0 {
				t.Errorf("%s has no %s payment", m.Code, pattern)
			}
		}
	}
}

// TestRunCounts checks the confusion counts on payments whose decisions
// are known: one rule denies amounts of 1000 and more, another reviews
// top-ups.
func TestRunCounts(t *testing.T) {
	rs, err := fraud.ParseRules([]byte(`
version: t-1
markets:
  default: {review_score: 400, deny_score: 700}
rules:
  - {name: big, reason: big, score: 800, when: amount >= 1000}
  - {name: topup, reason: topup, score: 500, kinds: [topup], when: "true"}
`))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC)
	mk := func(i int, kind string, amount int64, fraudulent bool, warmup bool) Txn {
		return Txn{Payment: fraud.Payment{Kind: kind, EventKey: string(rune('a' + i)), Wallet: "w", Amount: amount, Currency: "PHP",
			At: at.Add(time.Duration(i) * time.Hour)}, Balance: 1 << 40, Fraud: fraudulent, Warmup: warmup, Pattern: "p"}
	}
	txns := []Txn{
		mk(0, fraud.KindCharge, 5000, true, true),   // warm-up: not counted
		mk(1, fraud.KindCharge, 5000, true, false),  // fraud denied
		mk(2, fraud.KindTopup, 10, true, false),     // fraud reviewed
		mk(3, fraud.KindCharge, 10, true, false),    // fraud allowed
		mk(4, fraud.KindCharge, 2000, false, false), // legit denied
		mk(5, fraud.KindTopup, 20, false, false),    // legit reviewed
		mk(6, fraud.KindCharge, 20, false, false),   // legit allowed
		mk(7, fraud.KindCharge, 30, false, false),   // legit allowed
		mk(8, fraud.KindCharge, 40, false, false),   // legit allowed
		mk(9, fraud.KindCharge, 50, false, false),   // legit allowed
		mk(10, fraud.KindCharge, 60, false, false),  // legit allowed
	}
	r, err := Run(context.Background(), "test", Slice(txns), rs)
	if err != nil {
		t.Fatal(err)
	}
	want := Counts{Payments: 10, Fraud: 3, FraudDenied: 1, FraudReviewed: 1, LegitDenied: 1, LegitReviewed: 1,
		FraudAmountUSD: 5020.0 / 5700, CaughtAmountUSD: 5010.0 / 5700}
	if diff := cmp.Diff(want, r.Total, cmp.Comparer(func(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 })); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	for name, got := range map[string][2]float64{
		"precision":          {0.5, r.Total.Precision()},
		"recall":             {2.0 / 3, r.Total.Recall()},
		"deny recall":        {1.0 / 3, r.Total.DenyRecall()},
		"false-decline rate": {1.0 / 7, r.Total.FalseDeclineRate()},
		"false-review rate":  {1.0 / 7, r.Total.FalseReviewRate()},
	} {
		if d := got[0] - got[1]; d > 1e-9 || d < -1e-9 {
			t.Errorf("%s = %v, want %v", name, got[1], got[0])
		}
	}
	// 30% fraud here; at 1%: 2 flagged fraud against 2 flagged legitimate
	// payments scaled by (3*99)/7.
	if got, want := r.Total.ProjectedPrecision(0.01), 2/(2+2*297.0/7); got-want > 1e-9 || want-got > 1e-9 {
		t.Errorf("projected precision %v, want %v", got, want)
	}
}

func TestReadPaySim(t *testing.T) {
	f, err := os.Open("testdata/paysim_sample.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seq, err := ReadPaySim(f, "PHP", PaySimStart)
	if err != nil {
		t.Fatal(err)
	}
	var got []Txn
	for tx, err := range seq {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, tx)
	}
	h := func(n int) time.Time { return PaySimStart.Add(time.Duration(n-1) * time.Hour) }
	want := []Txn{
		{Payment: fraud.Payment{Kind: fraud.KindCharge, EventKey: "/paysim|2", Wallet: "C1000001", Payee: "M2000001", Amount: 125050, Currency: "PHP", At: h(1)},
			Balance: 500000, Pattern: "paysim_payment"},
		{Payment: fraud.Payment{Kind: fraud.KindCharge, EventKey: "/paysim|4", Wallet: "C1000003", Payee: "C3000002", Amount: 2500000, Currency: "PHP", At: h(1).Add(2 * time.Second)},
			Balance: 2500000, Fraud: true, Pattern: "paysim_transfer_fraud"},
		{Payment: fraud.Payment{Kind: fraud.KindCharge, EventKey: "/paysim|5", Wallet: "C3000002", Payee: "C3000003", Amount: 2500000, Currency: "PHP", At: h(1).Add(3 * time.Second)},
			Balance: 2500000, Fraud: true, Pattern: "paysim_cash_out_fraud"},
		{Payment: fraud.Payment{Kind: fraud.KindCharge, EventKey: "/paysim|6", Wallet: "C1000004", Payee: "C3000004", Amount: 5525, Currency: "PHP", At: h(2)},
			Balance: 20000, Pattern: "paysim_debit"},
		{Payment: fraud.Payment{Kind: fraud.KindCharge, EventKey: "/paysim|7", Wallet: "C1000001", Payee: "M2000002", Amount: 9999, Currency: "PHP", At: h(2).Add(time.Second)},
			Balance: 374950, Pattern: "paysim_payment"},
		{Payment: fraud.Payment{Kind: fraud.KindCharge, EventKey: "/paysim|9", Wallet: "C1000006", Payee: "C3000005", Amount: 12000, Currency: "PHP", At: h(3)},
			Balance: 15000, Pattern: "paysim_transfer"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ReadPaySim (-want +got):\n%s", diff)
	}
	// IDR has no minor unit: amounts round to whole rupiah.
	idr, err := ReadPaySim(strings.NewReader("step,type,amount,nameOrig,oldbalanceOrg,newbalanceOrig,nameDest,oldbalanceDest,newbalanceDest,isFraud\n1,PAYMENT,1250.50,C1,5000,3749.5,M1,0,0,0\n"), "IDR", PaySimStart)
	if err != nil {
		t.Fatal(err)
	}
	for tx, err := range idr {
		if err != nil || tx.Payment.Amount != 1251 || tx.Payment.Currency != "IDR" {
			t.Errorf("IDR row: %+v, %v", tx, err)
		}
	}
}

func TestReadPaySimRejects(t *testing.T) {
	const header = "step,type,amount,nameOrig,oldbalanceOrg,newbalanceOrig,nameDest,oldbalanceDest,newbalanceDest,isFraud\n"
	for name, tt := range map[string]struct{ csv, currency, want string }{
		"missing column": {"step,type,amount\n1,PAYMENT,1\n", "PHP", `no column "nameOrig"`},
		"bad currency":   {header, "USD", "USD"},
		"bad step":       {header + "0,PAYMENT,1,C1,1,0,M1,0,0,0\n", "PHP", "line 2: step"},
		"bad type":       {header + "1,REFUND,1,C1,1,0,M1,0,0,0\n", "PHP", "line 2: type"},
		"bad amount":     {header + "1,PAYMENT,-5,C1,1,0,M1,0,0,0\n", "PHP", "line 2: amount"},
		"bad label":      {header + "1,PAYMENT,5,C1,1,0,M1,0,0,yes\n", "PHP", "line 2: isFraud"},
		"short row":      {header + "1,PAYMENT,5\n", "PHP", "wrong number of fields"},
		"bad balance":    {header + "1,PAYMENT,5,C1,x,0,M1,0,0,0\n", "PHP", "oldbalanceOrg"},
		"empty name":     {header + "1,PAYMENT,5,,1,0,M1,0,0,0\n", "PHP", "nameOrig"},
		"later bad line": {header + "1,PAYMENT,5,C1,9,4,M1,0,0,0\n1,PAYMENT,5,C1,9,4,M1,0,0,2\n", "PHP", "line 3"},
	} {
		seq, err := ReadPaySim(strings.NewReader(tt.csv), tt.currency, PaySimStart)
		if err == nil {
			for _, e := range seq {
				if e != nil {
					err = e
					break
				}
			}
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err %v, want %q", name, err, tt.want)
		}
	}
}

// TestPaySimDrainsAreCaught: the PaySim fraud of the sample (a transfer of
// the whole balance, then its cash-out) is denied by the default rules.
func TestPaySimDrainsAreCaught(t *testing.T) {
	rs, err := fraud.DefaultRules()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("testdata/paysim_sample.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seq, err := ReadPaySim(f, "PHP", PaySimStart)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(context.Background(), "sample", seq, rs)
	if err != nil {
		t.Fatal(err)
	}
	if r.Total.Payments != 6 || r.Total.Fraud != 2 || r.Total.FraudDenied != 2 || r.Total.LegitDenied+r.Total.LegitReviewed != 0 {
		t.Errorf("counts %+v", r.Total)
	}
	var buf bytes.Buffer
	r.WriteMarkdown(&buf, "amount")
	if !strings.Contains(buf.String(), "| 6 | 2 | 100.0% | 100.0% | 100.0% |") {
		t.Errorf("report:\n%s", buf.String())
	}
}

// TestReportIsCurrent regenerates docs/fraud-eval.md with the shipped rules
// and compares: a change to the rules or the generator must come with the
// regenerated report (go run ./cmd/sebelas fraud eval --out docs/fraud-eval.md).
func TestReportIsCurrent(t *testing.T) {
	if testing.Short() {
		t.Skip("regenerates the whole report (seconds)")
	}
	rs, err := fraud.DefaultRules()
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig(ReportSeed)
	txns, err := Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(context.Background(), "x", Slice(txns), rs)
	if err != nil {
		t.Fatal(err)
	}
	r.Source = ReportSource(cfg)
	var buf bytes.Buffer
	WriteDocument(&buf, r, cfg, RulesNameDefault)
	doc, err := os.ReadFile("../../../docs/fraud-eval.md")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(buf.String(), string(doc)); diff != "" {
		t.Errorf("docs/fraud-eval.md is not the report of the shipped rules; regenerate it (-fresh +file):\n%s", diff)
	}
	if r.Total.FalseDeclineRate() > 0.001 || r.Total.Recall() < 0.8 {
		t.Errorf("the shipped rules: recall %.3f, false-decline rate %.4f", r.Total.Recall(), r.Total.FalseDeclineRate())
	}
}
