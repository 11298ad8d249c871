package audit_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/audit"
	"github.com/sebelas/sebelas/internal/devtools/ddbtest"
	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/ledger"
	"github.com/sebelas/sebelas/internal/market"
	"github.com/sebelas/sebelas/internal/money"
	"github.com/sebelas/sebelas/internal/settle"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// workload is the state a mixed run leaves, for the checks.
type workload struct {
	db       *dynamodb.Client
	table    string
	charges  []string // succeeded charge ids
	refunds  []string // succeeded refund ids
	declined int
	rejected int
}

var currencies = []money.Currency{money.IDR, money.INR, money.PHP}

// runWorkload: cash-ins, charges (some declined), refunds (some rejected),
// the first day settled in every market, refunds of settled charges and
// new charges on the second day, which is settled in one market only.
func runWorkload(t *testing.T) *workload {
	t.Helper()
	ctx := context.Background()
	db, name := ddbtest.New(t)
	clk := &clock{}
	l := ledger.New(db, name, clk.Now)
	s := settle.New(db, name, settle.Options{Now: clk.Now})
	w := &workload{db: db, table: name}
	rng := rand.New(rand.NewPCG(11, 11))
	day1 := time.Date(2026, 11, 10, 6, 0, 0, 0, time.UTC) // afternoon in every market
	day2 := day1.Add(24 * time.Hour)
	after := day2.Add(24 * time.Hour)

	const wallets, merchants = 6, 5
	for _, c := range currencies {
		for i := range wallets {
			clk.Set(day1)
			amount := int64(200_000 + rng.IntN(300_000))
			if _, err := l.CashIn(ctx, fmt.Sprintf("ci-%s-%d", c, i), fmt.Sprintf("w-%d", i), money.Amount{Minor: amount, Currency: c}, "bank"); err != nil {
				t.Fatal(err)
			}
		}
	}
	n := 0
	charge := func(at time.Time, count int) {
		for range count {
			n++
			c := currencies[rng.IntN(len(currencies))]
			req := events.ChargeRequested{ChargeID: fmt.Sprintf("ch-%04d", n), Marketplace: "mp",
				MerchantID: fmt.Sprintf("m-%d", rng.IntN(merchants)), PayerWallet: fmt.Sprintf("w-%d", rng.IntN(wallets)),
				Amount: int64(1_000 + rng.IntN(120_000)), Currency: string(c), RequestedAt: at}
			clk.Set(at.Add(time.Duration(n) * time.Second))
			out, err := l.Charge(ctx, req, money.DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			if out.Status == ledger.ChargeSucceeded {
				w.charges = append(w.charges, req.ChargeID)
			} else {
				w.declined++
			}
		}
	}
	r := 0
	refund := func(at time.Time, count int) {
		for range count {
			r++
			clk.Set(at.Add(time.Duration(r) * time.Second))
			req := events.RefundRequested{RefundID: fmt.Sprintf("rf-%04d", r), ChargeID: w.charges[rng.IntN(len(w.charges))],
				Marketplace: "mp", Amount: int64(1 + rng.IntN(60_000)), Reason: "returned", RequestedAt: at}
			out, err := l.Refund(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if out.Status == ledger.RefundSucceeded {
				w.refunds = append(w.refunds, req.RefundID)
			} else {
				w.rejected++
			}
		}
	}
	settleDay := func(date string, codes ...string) {
		clk.Set(after.Add(time.Hour))
		for _, code := range codes {
			m, _ := market.ByCode(code)
			if out, err := s.Run(ctx, m, date, settle.RunOptions{}); err != nil || !out.Done {
				t.Fatalf("settle %s %s = %+v, %v", code, date, out, err)
			}
		}
	}
	charge(day1, 80)
	refund(day1.Add(2*time.Hour), 24)
	settleDay("2026-11-10", "ID", "IN", "PH")
	refund(day2, 24) // many of settled charges: debited in day 2's settlement
	charge(day2.Add(time.Hour), 40)
	settleDay("2026-11-11", "IN") // ID and PH's day 2 stays unsettled
	if w.declined == 0 || w.rejected == 0 || len(w.refunds) == 0 {
		t.Fatalf("workload too tame: %d declined, %d refunds rejected, %d succeeded", w.declined, w.rejected, len(w.refunds))
	}
	return w
}

func TestMixedWorkloadPassesAndEachCorruptionFails(t *testing.T) {
	ctx := context.Background()
	w := runWorkload(t)
	rep, err := audit.Run(ctx, w.db, w.table, audit.Options{PageItems: 37})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := rep.Write(&out); err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("audit of a clean workload failed:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "result: OK") {
		t.Errorf("report does not say OK:\n%s", out.String())
	}
	// Every term of the invariant is exercised somewhere.
	var unsettled, refundsOpen, merchantMoney int64
	for _, c := range rep.Currencies {
		unsettled += c.UnsettledCharges
		refundsOpen += c.UnsettledRefunds
		merchantMoney += c.MerchantBalances
	}
	if unsettled == 0 || refundsOpen == 0 || merchantMoney == 0 || rep.ByKind[settle.KindSettlement] == 0 {
		t.Errorf("workload leaves unsettled charges %d, unsettled refunds %d, merchant balances %d, settlements %d: want all > 0",
			unsettled, refundsOpen, merchantMoney, rep.ByKind[settle.KindSettlement])
	}
	t.Logf("clean audit of %d items, %d charges (%d declined), %d refunds (%d rejected)",
		rep.Items, len(w.charges), w.declined, len(w.refunds), w.rejected)

	// One item corrupted at a time; the audit must name the rule, and pass
	// again once the item is put back.
	payerBalance := key("W#w-1", "BAL#IDR")
	firstSettlement := findKey(t, w, settle.KindSettlement)
	merchantBalance := findKey(t, w, settle.KindMerchantBalance)
	for _, tt := range []struct {
		name  string
		key   map[string]types.AttributeValue
		set   string // attribute
		value func(old int64) int64
		want  []string
	}{
		{"a unit created in a wallet", payerBalance, "balance", func(v int64) int64 { return v + 1 }, []string{audit.CheckConservation}},
		{"a negative wallet", payerBalance, "balance", func(v int64) int64 { return -v }, []string{audit.CheckConservation, audit.CheckNegativeBalance}},
		{"held without a top-up", payerBalance, "held", func(v int64) int64 { return v + 5 }, []string{audit.CheckConservation, audit.CheckHeld}},
		{"a cash-in changed", key("K#ci-INR-0", "K"), "amount", func(v int64) int64 { return v - 1 }, []string{audit.CheckConservation}},
		{"refunded past the charge", key("C#"+w.charges[0], "C"), "refunded", func(v int64) int64 { return 1 << 40 }, []string{audit.CheckRefundedCharge}},
		// Day 1's refunds are settled: the settlement no longer matches.
		{"a refund grown", key("R#"+w.refunds[0], "R"), "amount", func(v int64) int64 { return v + 1 }, []string{audit.CheckRefundedCharge, audit.CheckSettlementSum}},
		{"a settlement's total", firstSettlement, "charges_total", func(v int64) int64 { return v + 100 }, []string{audit.CheckSettlementSum}},
		{"a merchant paid twice", merchantBalance, "balance", func(v int64) int64 { return 2 * v }, []string{audit.CheckConservation, audit.CheckMerchantBalance}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			old := getItem(t, w, tt.key)
			var before int64
			if v, ok := old[tt.set].(*types.AttributeValueMemberN); ok {
				fmt.Sscan(v.Value, &before)
			}
			setNumber(t, w, tt.key, tt.set, tt.value(before))
			rep, err := audit.Run(ctx, w.db, w.table, audit.Options{})
			putItem(t, w, old)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, check := range []string{audit.CheckConservation, audit.CheckNegativeBalance, audit.CheckRefundedCharge,
				audit.CheckSettlementSum, audit.CheckMerchantBalance, audit.CheckHeld, audit.CheckUnreadable} {
				if rep.Has(check) {
					got = append(got, check)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				var b strings.Builder
				_ = rep.Write(&b)
				t.Errorf("violated checks (-want +got):\n%s\n%s", diff, b.String())
			}
			var b strings.Builder
			if err := rep.Write(&b); err != nil || !strings.Contains(b.String(), "result: FAIL") {
				t.Errorf("report of a corrupt table does not say FAIL:\n%s", b.String())
			}
		})
	}
	// Deleting a settlement record: its units still say they were paid and
	// the merchant holds the money, so conservation holds; the audit names
	// the missing record and the balance it no longer explains.
	t.Run("a settlement lost", func(t *testing.T) {
		old := getItem(t, w, firstSettlement)
		if _, err := w.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(w.table), Key: firstSettlement}); err != nil {
			t.Fatal(err)
		}
		rep, err := audit.Run(ctx, w.db, w.table, audit.Options{})
		putItem(t, w, old)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Has(audit.CheckConservation) || !rep.Has(audit.CheckMerchantBalance) || !rep.Has(audit.CheckSettlementSum) {
			t.Errorf("audit without a settlement: %+v", rep.Violations)
		}
	})
	// A unit that left the unsettled index without being settled would never
	// be paid: the audit names it.
	t.Run("a unit dropped from the index", func(t *testing.T) {
		k := findUnsettledUnit(t, w)
		old := getItem(t, w, k)
		if _, err := w.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(w.table), Key: k,
			UpdateExpression: aws.String("REMOVE gsi1pk, gsi1sk")}); err != nil {
			t.Fatal(err)
		}
		rep, err := audit.Run(ctx, w.db, w.table, audit.Options{})
		putItem(t, w, old)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Has(audit.CheckUnitIndexed) || rep.Has(audit.CheckConservation) {
			t.Errorf("audit of a unit neither settled nor indexed: %+v", rep.Violations)
		}
	})
	rep, err = audit.Run(ctx, w.db, w.table, audit.Options{})
	if err != nil || !rep.OK() {
		t.Fatalf("after restoring every item: %+v, %v", rep.Violations, err)
	}
}

// TestRefundsSettlementsAndConcurrencyKeepTheInvariant hammers one charge
// with refunds while its day is being settled, then audits.
func TestRefundsSettlementsAndConcurrencyKeepTheInvariant(t *testing.T) {
	ctx := context.Background()
	db, name := ddbtest.New(t)
	clk := &clock{t: time.Date(2026, 11, 10, 6, 0, 0, 0, time.UTC)}
	l := ledger.New(db, name, clk.Now)
	if _, err := l.CashIn(ctx, "ci-1", "w-1", money.Amount{Minor: 1_000_000, Currency: money.MYR}, "bank"); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		req := events.ChargeRequested{ChargeID: fmt.Sprintf("ch-%d", i), Marketplace: "mp", MerchantID: "m-1",
			PayerWallet: "w-1", Amount: 100_000, Currency: "MYR"}
		if out, err := l.Charge(ctx, req, money.DefaultLimits()); err != nil || out.Status != ledger.ChargeSucceeded {
			t.Fatalf("charge: %+v %v", out, err)
		}
	}
	clk.Set(clk.Now().Add(24 * time.Hour)) // the next day: refunds land on it
	my, _ := market.ByCode("MY")
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Go(func() {
			req := events.RefundRequested{RefundID: fmt.Sprintf("rf-%d", i), ChargeID: fmt.Sprintf("ch-%d", i%5),
				Marketplace: "mp", Amount: 7_000, Reason: "r"}
			for {
				if _, err := l.Refund(ctx, req); err == nil || fault.IsPermanent(err) {
					return
				}
			}
		})
	}
	wg.Go(func() {
		s := settle.New(db, name, settle.Options{Now: clk.Now})
		for {
			if out, err := s.Run(ctx, my, "2026-11-10", settle.RunOptions{}); err == nil && out.Done {
				return
			}
		}
	})
	wg.Wait()
	rep, err := audit.Run(ctx, db, name, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		var b strings.Builder
		_ = rep.Write(&b)
		t.Fatalf("audit after concurrent refunds and settlement:\n%s", b.String())
	}
	// 30 x 7,000 asked of 5 x 100,000: all paid, all unsettled.
	if got := rep.Currencies[0].UnsettledRefunds; got != 30*7_000 {
		t.Errorf("unsettled refunds = %d, want %d", got, 30*7_000)
	}
}

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: sk}}
}

func findKey(t *testing.T, w *workload, kind string) map[string]types.AttributeValue {
	t.Helper()
	out, err := w.db.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(w.table), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range out.Items {
		if k, ok := it["kind"].(*types.AttributeValueMemberS); ok && k.Value == kind {
			if n, ok := it["net"].(*types.AttributeValueMemberN); ok && n.Value == "0" {
				continue // corrupting a zero would change nothing
			}
			return map[string]types.AttributeValue{"pk": it["pk"], "sk": it["sk"]}
		}
	}
	t.Fatalf("no %s item", kind)
	return nil
}

// findUnsettledUnit is the key of a charge still in the unsettled index.
func findUnsettledUnit(t *testing.T, w *workload) map[string]types.AttributeValue {
	t.Helper()
	out, err := w.db.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(w.table), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range out.Items {
		k, _ := it["kind"].(*types.AttributeValueMemberS)
		_, indexed := it["gsi1pk"]
		if k != nil && k.Value == "charge" && indexed {
			return map[string]types.AttributeValue{"pk": it["pk"], "sk": it["sk"]}
		}
	}
	t.Fatal("no unsettled charge")
	return nil
}

func getItem(t *testing.T, w *workload, k map[string]types.AttributeValue) map[string]types.AttributeValue {
	t.Helper()
	out, err := w.db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(w.table), Key: k, ConsistentRead: aws.Bool(true)})
	if err != nil || len(out.Item) == 0 {
		t.Fatalf("get %v: %v", k, err)
	}
	return out.Item
}

func putItem(t *testing.T, w *workload, item map[string]types.AttributeValue) {
	t.Helper()
	if _, err := w.db.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(w.table), Item: item}); err != nil {
		t.Fatal(err)
	}
}

func setNumber(t *testing.T, w *workload, k map[string]types.AttributeValue, attr string, v int64) {
	t.Helper()
	upd, err := expression.NewBuilder().WithUpdate(expression.Set(expression.Name(attr), expression.Value(v))).Build()
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.db.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
		TableName: aws.String(w.table), Key: k, UpdateExpression: upd.Update(),
		ExpressionAttributeNames: upd.Names(), ExpressionAttributeValues: upd.Values(),
	})
	if err != nil {
		t.Fatal(err)
	}
}
