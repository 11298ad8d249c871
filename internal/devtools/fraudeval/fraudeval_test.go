package fraudeval

import (
	"bytes"
	"context"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sebelas/sebelas/internal/fraud"
	"github.com/sebelas/sebelas/internal/market"
	"github.com/sebelas/sebelas/internal/money"
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

func readAll(t *testing.T, r io.Reader, opt PaySimOptions) ([]Txn, *PaySimStats, error) {
	t.Helper()
	seq, stats, err := ReadPaySim(r, opt)
	if err != nil {
		return nil, nil, err
	}
	var got []Txn
	for tx, err := range seq {
		if err != nil {
			return got, stats, err
		}
		got = append(got, tx)
	}
	return got, stats, nil
}

func TestReadPaySim(t *testing.T) {
	f, err := os.Open("testdata/paysim_sample.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, stats, err := readAll(t, f, PaySimOptions{Currency: "PHP"})
	if err != nil {
		t.Fatal(err)
	}
	h := func(n int) time.Time { return PaySimStart.Add(time.Duration(n-1) * time.Hour) }
	// Step 1 has four rows (a quarter hour apart), step 2 three, step 3 one.
	want := []Txn{
		{Payment: fraud.Payment{Kind: fraud.KindCharge, Type: fraud.TypePayment, EventKey: "/paysim|2", Wallet: "C1000001", Payee: "M2000001", Amount: 125050, Currency: "PHP", At: h(1)},
			Balance: 500000, Pattern: "paysim_payment"},
		{Payment: fraud.Payment{Kind: fraud.KindCharge, Type: fraud.TypeCashIn, EventKey: "/paysim|3", Wallet: "C1000002", Payee: "C3000001", Amount: 30000, Currency: "PHP", At: h(1).Add(15 * time.Minute)},
			Balance: 10000, PayeeBalance: 90000, CashIn: true, Pattern: "paysim_cash_in"},
		{Payment: fraud.Payment{Kind: fraud.KindCharge, Type: fraud.TypeTransfer, EventKey: "/paysim|4", Wallet: "C1000003", Payee: "C3000002", Amount: 2500000, Currency: "PHP", At: h(1).Add(30 * time.Minute)},
			Balance: 2500000, Fraud: true, Pattern: "paysim_transfer_fraud"},
		{Payment: fraud.Payment{Kind: fraud.KindCharge, Type: fraud.TypeCashOut, EventKey: "/paysim|5", Wallet: "C3000002", Payee: "C3000003", Amount: 2500000, Currency: "PHP", At: h(1).Add(45 * time.Minute)},
			Balance: 2500000, PayeeBalance: 10000, Fraud: true, Pattern: "paysim_cash_out_fraud"},
		{Payment: fraud.Payment{Kind: fraud.KindCharge, Type: fraud.TypeDebit, EventKey: "/paysim|6", Wallet: "C1000004", Payee: "C3000004", Amount: 5525, Currency: "PHP", At: h(2)},
			Balance: 20000, Pattern: "paysim_debit"},
		{Payment: fraud.Payment{Kind: fraud.KindCharge, Type: fraud.TypePayment, EventKey: "/paysim|7", Wallet: "C1000001", Payee: "M2000002", Amount: 9999, Currency: "PHP", At: h(2).Add(30 * time.Minute)},
			Balance: 374950, Pattern: "paysim_payment"},
		{Payment: fraud.Payment{Kind: fraud.KindCharge, Type: fraud.TypeTransfer, EventKey: "/paysim|9", Wallet: "C1000006", Payee: "C3000005", Amount: 12000, Currency: "PHP", At: h(3)},
			Balance: 15000, Pattern: "paysim_transfer"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ReadPaySim (-want +got):\n%s", diff)
	}
	if stats.Rows != 8 || stats.Skipped != 0 || !strings.Contains(stats.Scale, "times 100") {
		t.Errorf("stats %+v", stats)
	}
	// IDR has no minor unit: amounts round to whole rupiah.
	idr, _, err := readAll(t, strings.NewReader(paysimHeader+"1,PAYMENT,1250.50,C1,5000,3749.5,M1,0,0,0\n"), PaySimOptions{Currency: "IDR"})
	if err != nil || len(idr) != 1 || idr[0].Payment.Amount != 1251 || idr[0].Payment.Currency != "IDR" {
		t.Errorf("IDR row: %+v, %v", idr, err)
	}
}

const paysimHeader = "step,type,amount,nameOrig,oldbalanceOrg,newbalanceOrig,nameDest,oldbalanceDest,newbalanceDest,isFraud\n"

// TestReadPaySimSkipsBadRows: a bad row is skipped and named by its line,
// the rest of the file is read; the readable oddities of exports (a
// byte-order mark, a quoted amount with thousands separators, a lower-case
// type, a 1.0 label) are read.
func TestReadPaySimSkipsBadRows(t *testing.T) {
	csv := "\ufeff" + paysimHeader +
		"1,PAYMENT,5,C1,9,4,M1,0,0,0\n" + // line 2: fine
		"1,payment,\"1,000.00\",C2,2000,1000,M1,0,0,1.0\n" + // 3: read
		"1,PAYMENT,5\n" + // 4: short
		"1,REFUND,1,C1,1,0,M1,0,0,0\n" + // 5: unknown type
		"1,PAYMENT,-5,C1,1,0,M1,0,0,0\n" + // 6: bad amount
		"1,PAYMENT,5,C1,9,4,M1,0,0,yes\n" + // 7: bad label
		"0,PAYMENT,1,C1,1,0,M1,0,0,0\n" + // 8: bad step
		"1,PAYMENT,5,C1,x,0,M1,0,0,0\n" + // 9: bad balance
		"1,PAYMENT,5,,1,0,M1,0,0,0\n" + // 10: empty name
		"2,TRANSFER,7,C3,0,0,C4,0,0,0\n" // 11: fine, balance unknown
	got, stats, err := readAll(t, strings.NewReader(csv), PaySimOptions{Currency: "PHP"})
	if err != nil {
		t.Fatal(err)
	}
	var lines []int
	for _, s := range stats.SkippedLines {
		lines = append(lines, s.Line)
	}
	if diff := cmp.Diff([]int{4, 5, 6, 7, 8, 9, 10}, lines); diff != "" || stats.Skipped != 7 {
		t.Errorf("skipped %d, lines (-want +got):\n%s", stats.Skipped, diff)
	}
	if len(got) != 3 || got[1].Payment.Amount != 100000 || !got[1].Fraud || got[2].Balance != -1 {
		t.Errorf("rows read: %+v", got)
	}
}

func TestReadPaySimRejects(t *testing.T) {
	for name, tt := range map[string]struct{ csv, currency, want string }{
		"missing column": {"step,type,amount\n1,PAYMENT,1\n", "PHP", `no column "nameOrig"`},
		"bad currency":   {paysimHeader, "USD", "USD"},
		"out of order":   {paysimHeader + "2,PAYMENT,5,C1,9,4,M1,0,0,0\n1,PAYMENT,5,C1,9,4,M1,0,0,0\n", "PHP", "line 3: step 1 after step 2"},
	} {
		_, _, err := readAll(t, strings.NewReader(tt.csv), PaySimOptions{Currency: tt.currency})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err %v, want %q", name, err, tt.want)
		}
	}
}

// TestWritePaySimRoundTrip: the second generator's traffic written as a
// PaySim CSV reads back as the same payments, devices and patterns included,
// with the history as warm-up.
func TestWritePaySimRoundTrip(t *testing.T) {
	cfg := PaySimConfig(5)
	cfg.UsersPerMarket, cfg.HistoryDays, cfg.Days = 60, 1, 2
	txns, err := Generate2(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WritePaySim(&buf, txns, PaySimFileStart(cfg), true); err != nil {
		t.Fatal(err)
	}
	got, stats, err := readAll(t, &buf, PaySimFileOptions(cfg))
	if err != nil || stats.Skipped != 0 || len(got) != len(txns) {
		t.Fatalf("read back %d of %d rows, %+v, %v", len(got), len(txns), stats, err)
	}
	for i := range txns {
		w, g := txns[i], got[i]
		if w.Payment.Wallet != g.Payment.Wallet || w.Payment.Amount != g.Payment.Amount || w.Payment.TypeOrKind() != g.Payment.Type ||
			w.Fraud != g.Fraud || w.Pattern != g.Pattern || w.Warmup != g.Warmup || w.Payment.DeviceID != g.Payment.DeviceID ||
			!w.Payment.At.Truncate(time.Hour).Equal(g.Payment.At.Truncate(time.Hour)) || w.CashIn != g.CashIn {
			t.Fatalf("row %d: wrote %+v, read %+v", i, w, g)
		}
	}
}

// TestGenerate2Shape: every fraud pattern in every market, payments never
// above the balance, time order, and a festival day of 26 to 80 times the
// volume of an ordinary day.
func TestGenerate2Shape(t *testing.T) {
	cfg := DefaultConfig2(3)
	cfg.UsersPerMarket = 200
	txns, err := Generate2(cfg)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := Generate2(cfg)
	if !cmp.Equal(txns, again) {
		t.Fatal("same seed, different traffic")
	}
	perDay := map[string]map[string]int{}
	seen := map[string]map[string]int{}
	for i, tx := range txns {
		p := tx.Payment
		if i > 0 && p.At.Before(txns[i-1].Payment.At) {
			t.Fatalf("row %d out of time order", i)
		}
		if !tx.CashIn && (p.Amount <= 0 || p.Amount > tx.Balance) {
			t.Fatalf("row %d: amount %d, balance %d", i, p.Amount, tx.Balance)
		}
		if tx.Fraud != slices.Contains(FraudPatterns2, tx.Pattern) {
			t.Fatalf("row %d: fraud %v, pattern %s", i, tx.Fraud, tx.Pattern)
		}
		m, _ := market.ByCurrency(money.Currency(p.Currency))
		if seen[m.Code] == nil {
			seen[m.Code], perDay[m.Code] = map[string]int{}, map[string]int{}
		}
		seen[m.Code][tx.Pattern]++
		if !tx.CashIn {
			perDay[m.Code][m.LocalDate(p.At)]++
		}
	}
	for _, code := range cfg.Markets {
		for _, p := range append(FraudPatterns2, PatternLegitCollect, PatternLegitCommuter, PatternLegitNewUser) {
			if seen[code][p] == 0 {
				t.Errorf("%s has no %s", code, p)
			}
		}
		ratio := float64(perDay[code][FestivalDate]) / float64(perDay[code]["2026-11-08"])
		if ratio < 20 || ratio > 100 {
			t.Errorf("%s: festival day %d payments, an ordinary day %d (x%.0f)", code, perDay[code][FestivalDate], perDay[code]["2026-11-08"], ratio)
		}
	}
}

func TestROCAUC(t *testing.T) {
	for name, tt := range map[string]struct {
		s    []scored
		want float64
	}{
		"perfect":  {[]scored{{1, false}, {2, false}, {3, true}}, 1},
		"reversed": {[]scored{{3, false}, {2, false}, {1, true}}, 0},
		"all tied": {[]scored{{1, false}, {1, true}, {1, false}, {1, true}}, 0.5},
		"one swap": {[]scored{{1, false}, {2, true}, {3, false}, {4, true}}, 0.75},
	} {
		if got := rocAUC(tt.s); got != tt.want {
			t.Errorf("%s: %v, want %v", name, got, tt.want)
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
	seq, _, err := ReadPaySim(f, PaySimOptions{Currency: "PHP"})
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
// and compares: a change to the rules or the generators must come with the
// regenerated report (go run ./cmd/sebelas fraud eval --out docs/fraud-eval.md).
func TestReportIsCurrent(t *testing.T) {
	if testing.Short() {
		t.Skip("regenerates the whole report (seconds)")
	}
	rs, err := fraud.DefaultRules()
	if err != nil {
		t.Fatal(err)
	}
	sets, err := Datasets(context.Background(), rs, 0)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	WriteDocument(&buf, sets, RulesNameDefault)
	doc, err := os.ReadFile("../../../docs/fraud-eval.md")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(buf.String(), string(doc)); diff != "" {
		t.Errorf("docs/fraud-eval.md is not the report of the shipped rules; regenerate it (-fresh +file):\n%s", diff)
	}
	if r := sets[0].Report; r.Total.FalseDeclineRate() > 0.001 || r.Total.Recall() < 0.8 {
		t.Errorf("the shipped rules on their own generator: recall %.3f, false-decline rate %.4f", r.Total.Recall(), r.Total.FalseDeclineRate())
	}
}
