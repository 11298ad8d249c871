package settle_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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

// clock is a settable time source shared by the ledger and settle.
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

type env struct {
	t      *testing.T
	db     *dynamodb.Client
	table  string
	clock  *clock
	ledger *ledger.Store
	ctx    context.Context
	n      int
}

func newEnv(t *testing.T) *env {
	t.Helper()
	db, name := ddbtest.New(t)
	c := &clock{t: time.Date(2026, 11, 10, 3, 0, 0, 0, time.UTC)}
	return &env{t: t, db: db, table: name, clock: c, ledger: ledger.New(db, name, c.Now), ctx: context.Background()}
}

func (e *env) settler(opts settle.Options) *settle.Store {
	opts.Now = e.clock.Now
	return settle.New(e.db, e.table, opts)
}

func (e *env) fund(wallet string, minor int64, cur money.Currency) {
	e.t.Helper()
	e.n++
	if _, err := e.ledger.CashIn(e.ctx, fmt.Sprintf("ci-%d", e.n), wallet, money.Amount{Minor: minor, Currency: cur}, "test"); err != nil {
		e.t.Fatal(err)
	}
}

// charge makes a succeeded charge at time at.
func (e *env) charge(at time.Time, id, merchant, payer string, amount int64, cur money.Currency) {
	e.t.Helper()
	e.clock.Set(at)
	req := events.ChargeRequested{ChargeID: id, Marketplace: "mp", MerchantID: merchant, PayerWallet: payer,
		Amount: amount, Currency: string(cur), RequestedAt: at}
	out, err := e.ledger.Charge(e.ctx, req, money.DefaultLimits())
	if err != nil || out.Status != ledger.ChargeSucceeded {
		e.t.Fatalf("charge %s = %+v, %v", id, out, err)
	}
}

func (e *env) refund(at time.Time, id, chargeID string, amount int64) {
	e.t.Helper()
	e.clock.Set(at)
	out, err := e.ledger.Refund(e.ctx, events.RefundRequested{RefundID: id, ChargeID: chargeID, Marketplace: "mp",
		Amount: amount, Reason: "returned", RequestedAt: at})
	if err != nil || out.Status != ledger.RefundSucceeded {
		e.t.Fatalf("refund %s = %+v, %v", id, out, err)
	}
}

func (e *env) merchantBalance(s *settle.Store, merchant string, cur money.Currency) int64 {
	e.t.Helper()
	b, _, err := s.MerchantBalance(e.ctx, merchant, string(cur))
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

func mustMarket(t *testing.T, code string) market.Market {
	t.Helper()
	m, err := market.ByCode(code)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// collector gathers what OnMerchant is given.
type collector struct {
	mu  sync.Mutex
	got []settle.Result
}

func (c *collector) On(_ context.Context, r settle.Result) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, r)
	return nil
}

// totals are one settlement's figures, stable for cmp.
type totals struct {
	Charges, ChargesTotal, Refunds, RefundsTotal, LateCharges, LateChargesTotal, LateRefunds, LateRefundsTotal, Net int64
}

// byMerchant is the latest version reported of each settlement, keyed by
// merchant/currency/business date.
func (c *collector) byMerchant() map[string]totals {
	c.mu.Lock()
	defer c.mu.Unlock()
	latest := map[string]settle.Result{}
	for _, r := range c.got {
		k := r.MerchantID + "/" + r.Currency + "/" + r.BusinessDate
		if r.Version > latest[k].Version {
			latest[k] = r
		}
	}
	out := map[string]totals{}
	for k, r := range latest {
		out[k] = totals{r.ChargesCount, r.ChargesTotal, r.RefundsCount, r.RefundsTotal,
			r.LateChargesCount, r.LateChargesTotal, r.LateRefundsCount, r.LateRefundsTotal, r.Net}
	}
	return out
}

// audited fails the test unless the whole table passes the audit.
func (e *env) audited() audit.Report {
	e.t.Helper()
	rep, err := audit.Run(e.ctx, e.db, e.table, audit.Options{})
	if err != nil {
		e.t.Fatal(err)
	}
	if !rep.OK() {
		var b strings.Builder
		_ = rep.Write(&b)
		e.t.Errorf("audit:\n%s", b.String())
	}
	return rep
}

// unsettled is the currency's unsettled charges and refunds, as audited.
func unsettled(rep audit.Report, cur money.Currency) (int64, int64) {
	for _, t := range rep.Currencies {
		if t.Currency == string(cur) {
			return t.UnsettledCharges, t.UnsettledRefunds
		}
	}
	return 0, 0
}

// Jakarta is UTC+7: 03:00 UTC on the 10th is 10:00 local on the 10th.
var (
	nov10 = time.Date(2026, 11, 10, 3, 0, 0, 0, time.UTC)
	nov11 = time.Date(2026, 11, 11, 3, 0, 0, 0, time.UTC)
	nov12 = time.Date(2026, 11, 12, 3, 0, 0, 0, time.UTC)
)

func TestSettlesEachMerchantOnceWithRefundsOfEarlierDaysNext(t *testing.T) {
	e := newEnv(t)
	id := mustMarket(t, "ID")
	s := e.settler(settle.Options{})
	e.fund("w-1", 10_000_000, money.IDR)
	e.fund("w-2", 10_000_000, money.IDR)
	e.charge(nov10, "c-1", "m-a", "w-1", 100_000, money.IDR)
	e.charge(nov10.Add(time.Minute), "c-2", "m-a", "w-2", 250_000, money.IDR)
	e.charge(nov10.Add(2*time.Minute), "c-3", "m-b", "w-1", 40_000, money.IDR)
	e.refund(nov10.Add(3*time.Minute), "r-1", "c-2", 50_000) // same day: in the same settlement
	// A declined charge is never a unit.
	e.clock.Set(nov10.Add(4 * time.Minute))
	if out, err := e.ledger.Charge(e.ctx, events.ChargeRequested{ChargeID: "c-x", Marketplace: "mp", MerchantID: "m-c",
		PayerWallet: "w-1", Amount: 15_000_000, Currency: "IDR"}, money.DefaultLimits()); err != nil || out.Status != ledger.ChargeDeclined {
		t.Fatalf("declined charge = %+v, %v", out, err)
	}

	e.clock.Set(nov11) // 10:00 on the 11th in Jakarta: the 10th is closed
	if err := settle.CheckClosed(id, "2026-11-10", e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	var c collector
	out, err := s.Run(e.ctx, id, "2026-11-10", settle.RunOptions{OnMerchant: c.On})
	if err != nil {
		t.Fatal(err)
	}
	if !out.Done || out.Units != 4 || out.Announced != 2 {
		t.Errorf("run = %+v, want done, 4 units, 2 settlements announced", out)
	}
	want := map[string]totals{
		"m-a/IDR/2026-11-10": {Charges: 2, ChargesTotal: 350_000, Refunds: 1, RefundsTotal: 50_000, Net: 300_000},
		"m-b/IDR/2026-11-10": {Charges: 1, ChargesTotal: 40_000, Net: 40_000},
	}
	if diff := cmp.Diff(want, c.byMerchant()); diff != "" {
		t.Errorf("settled (-want +got):\n%s", diff)
	}
	if got := e.merchantBalance(s, "m-a", money.IDR); got != 300_000 {
		t.Errorf("m-a balance = %d, want 300000", got)
	}

	// A second tick: done, nothing again.
	var again collector
	out, err = s.Run(e.ctx, id, "2026-11-10", settle.RunOptions{OnMerchant: again.On})
	if err != nil || !out.AlreadyDone || len(again.got) != 0 {
		t.Errorf("second run = %+v, %v, %d events; want already done and silent", out, err, len(again.got))
	}
	// The operator's re-run: a new pass that finds nothing unsettled.
	var rerun collector
	out, err = s.Run(e.ctx, id, "2026-11-10", settle.RunOptions{Restart: true, OnMerchant: rerun.On})
	if err != nil || !out.Done || out.Pass != 2 || out.Units != 0 || len(rerun.got) != 0 {
		t.Errorf("re-run = %+v, %v, %d events; want pass 2 settling nothing", out, err, len(rerun.got))
	}
	if got := e.merchantBalance(s, "m-a", money.IDR); got != 300_000 {
		t.Errorf("m-a balance after re-run = %d, want 300000", got)
	}

	// Next day: a refund of the settled c-1 and no sales: a debit.
	e.refund(nov11.Add(time.Hour), "r-2", "c-1", 30_000)
	e.clock.Set(nov12)
	var next collector
	if _, err := s.Run(e.ctx, id, "2026-11-11", settle.RunOptions{OnMerchant: next.On}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]totals{"m-a/IDR/2026-11-11": {Refunds: 1, RefundsTotal: 30_000, Net: -30_000}}, next.byMerchant()); diff != "" {
		t.Errorf("next day (-want +got):\n%s", diff)
	}
	if got := e.merchantBalance(s, "m-a", money.IDR); got != 270_000 {
		t.Errorf("m-a balance = %d, want 270000", got)
	}
	r, ok, err := s.GetSettlement(e.ctx, "m-a", "2026-11-11", "IDR")
	if err != nil || !ok || r.SettlementID != "S-m-a-2026-11-11-IDR" || r.Version != 1 {
		t.Errorf("stored settlement = %+v, %v, %v", r, ok, err)
	}
	if uc, ur := unsettled(e.audited(), money.IDR); uc != 0 || ur != 0 {
		t.Errorf("unsettled after both days: charges %d, refunds %d; want none", uc, ur)
	}
}

func TestDayOpenUntilAfterLocalMidnight(t *testing.T) {
	in := mustMarket(t, "IN")
	// Kolkata is UTC+5:30: the 10th ends at 18:30 UTC.
	for _, tt := range []struct {
		now    time.Time
		reason string
	}{
		{time.Date(2026, 11, 10, 18, 29, 0, 0, time.UTC), settle.ReasonDayOpen},
		{time.Date(2026, 11, 10, 18, 30, 30, 0, time.UTC), settle.ReasonDayOpen}, // inside the grace
		{time.Date(2026, 11, 10, 18, 31, 0, 0, time.UTC), ""},
	} {
		err := settle.CheckClosed(in, "2026-11-10", tt.now)
		if got := reasonOf(err); got != tt.reason {
			t.Errorf("CheckClosed(IN 2026-11-10) at %s = %v, want %q", tt.now, err, tt.reason)
		}
	}
	for _, bad := range []string{"2026-11-31", "2026-1-10", "yesterday", ""} {
		if err := settle.CheckClosed(in, bad, time.Now()); reasonOf(err) != settle.ReasonBadDate {
			t.Errorf("CheckClosed(%q) = %v, want %s", bad, err, settle.ReasonBadDate)
		}
	}
}

func reasonOf(err error) string {
	if err == nil {
		return ""
	}
	return fault.ReasonOf(err)
}

// TestStaggeredMidnights: between 17:00 and 18:30 UTC it is already the
// 11th in Jakarta (UTC+7) and still the 10th in Kolkata (UTC+5:30). A
// merchant selling in both markets is settled per market, each by its own
// local day.
func TestStaggeredMidnights(t *testing.T) {
	e := newEnv(t)
	s := e.settler(settle.Options{})
	id, in := mustMarket(t, "ID"), mustMarket(t, "IN")
	at := func(h, m int) time.Time { return time.Date(2026, 11, 10, h, m, 0, 0, time.UTC) }
	e.fund("w-id", 10_000_000, money.IDR)
	e.fund("w-in", 1_000_000, money.INR)
	e.charge(at(16, 50), "id-1", "m-both", "w-id", 100_000, money.IDR) // ID 23:50 on the 10th
	e.charge(at(16, 50), "in-1", "m-both", "w-in", 1_000, money.INR)   // IN 22:20 on the 10th
	e.charge(at(17, 10), "id-2", "m-both", "w-id", 200_000, money.IDR) // ID 00:10 on the 11th
	e.charge(at(17, 10), "in-2", "m-both", "w-in", 2_000, money.INR)   // IN 22:40 on the 10th
	e.charge(at(18, 20), "in-3", "m-in", "w-in", 4_000, money.INR)     // IN 23:50 on the 10th
	e.charge(at(18, 40), "in-4", "m-both", "w-in", 8_000, money.INR)   // IN 00:10 on the 11th

	// 00:05 in Jakarta: Jakarta's 10th is closed, Kolkata's is not.
	e.clock.Set(at(17, 5))
	if settle.PreviousDate(id, e.clock.Now()) != "2026-11-10" || settle.PreviousDate(in, e.clock.Now()) != "2026-11-09" {
		t.Fatalf("previous dates at 17:05 UTC: ID %s IN %s", settle.PreviousDate(id, e.clock.Now()), settle.PreviousDate(in, e.clock.Now()))
	}
	if err := settle.CheckClosed(in, "2026-11-10", e.clock.Now()); reasonOf(err) != settle.ReasonDayOpen {
		t.Fatalf("Kolkata's 10th at 17:05 UTC: %v, want open", err)
	}
	var idDay collector
	if _, err := s.Run(e.ctx, id, "2026-11-10", settle.RunOptions{OnMerchant: idDay.On}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]totals{"m-both/IDR/2026-11-10": {Charges: 1, ChargesTotal: 100_000, Net: 100_000}}, idDay.byMerchant()); diff != "" {
		t.Errorf("ID 2026-11-10 (-want +got):\n%s", diff)
	}

	// 00:05 in Kolkata.
	e.clock.Set(at(18, 35))
	if err := settle.CheckClosed(in, "2026-11-10", e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	var inDay collector
	if _, err := s.Run(e.ctx, in, "2026-11-10", settle.RunOptions{OnMerchant: inDay.On}); err != nil {
		t.Fatal(err)
	}
	want := map[string]totals{"m-both/INR/2026-11-10": {Charges: 2, ChargesTotal: 3_000, Net: 3_000}, "m-in/INR/2026-11-10": {Charges: 1, ChargesTotal: 4_000, Net: 4_000}}
	if diff := cmp.Diff(want, inDay.byMerchant()); diff != "" {
		t.Errorf("IN 2026-11-10 (-want +got):\n%s", diff)
	}
	// The next days pick up what crossed midnight.
	e.clock.Set(time.Date(2026, 11, 11, 19, 0, 0, 0, time.UTC))
	var idNext, inNext collector
	if _, err := s.Run(e.ctx, id, "2026-11-11", settle.RunOptions{OnMerchant: idNext.On}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Run(e.ctx, in, "2026-11-11", settle.RunOptions{OnMerchant: inNext.On}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]totals{"m-both/IDR/2026-11-11": {Charges: 1, ChargesTotal: 200_000, Net: 200_000}}, idNext.byMerchant()); diff != "" {
		t.Errorf("ID 2026-11-11 (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]totals{"m-both/INR/2026-11-11": {Charges: 1, ChargesTotal: 8_000, Net: 8_000}}, inNext.byMerchant()); diff != "" {
		t.Errorf("IN 2026-11-11 (-want +got):\n%s", diff)
	}
	if got := e.merchantBalance(s, "m-both", money.IDR); got != 300_000 {
		t.Errorf("m-both IDR = %d, want 300000", got)
	}
	if got := e.merchantBalance(s, "m-both", money.INR); got != 11_000 {
		t.Errorf("m-both INR = %d, want 11000", got)
	}
}

// crashingDB fails every TransactWriteItems after the first `allowed`,
// before sending it: the process died there.
type crashingDB struct {
	settle.DB
	allowed int64
	calls   atomic.Int64
}

var errCrash = errors.New("crash")

func (c *crashingDB) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	if c.calls.Add(1) > c.allowed {
		return nil, errCrash
	}
	return c.DB.TransactWriteItems(ctx, in, opts...)
}

func TestSettlementCrashedHalfWayIsResumedAndCreditsOnce(t *testing.T) {
	const merchants = 20
	for _, crash := range []string{"before a batch", "before announcing"} {
		t.Run(crash, func(t *testing.T) {
			e := newEnv(t)
			th := mustMarket(t, "TH")
			e.fund("w-1", 100_000_00, money.THB)
			want := map[string]totals{}
			for i := range merchants {
				m := fmt.Sprintf("m-%02d", i)
				amount := int64(100_00 * (i + 1))
				e.charge(nov10, "c-"+m, m, "w-1", amount, money.THB)
				want[m+"/THB/2026-11-10"] = totals{Charges: 1, ChargesTotal: amount, Net: amount}
			}
			e.clock.Set(nov11)
			var first collector
			var err error
			switch crash {
			case "before a batch":
				db := &crashingDB{DB: e.db, allowed: merchants / 2}
				s := settle.New(db, e.table, settle.Options{Now: e.clock.Now})
				_, err = s.Run(e.ctx, th, "2026-11-10", settle.RunOptions{OnMerchant: first.On})
			case "before announcing":
				// Every batch commits, then the process dies with half the
				// events out.
				var n atomic.Int64
				s := e.settler(settle.Options{})
				_, err = s.Run(e.ctx, th, "2026-11-10", settle.RunOptions{OnMerchant: func(ctx context.Context, r settle.Result) error {
					if n.Add(1) > merchants/2 {
						return errCrash
					}
					return first.On(ctx, r)
				}})
			}
			if !errors.Is(err, errCrash) {
				t.Fatalf("crashed run err = %v, want the crash", err)
			}
			s := e.settler(settle.Options{})
			var second collector
			out, err := s.Run(e.ctx, th, "2026-11-10", settle.RunOptions{OnMerchant: second.On})
			if err != nil || !out.Done {
				t.Fatalf("resumed run = %+v, %v", out, err)
			}
			// Every merchant is announced (some twice: at least once is the
			// promise, with the same settlement id and version) and
			// credited once.
			all := collector{got: append(append([]settle.Result(nil), first.got...), second.got...)}
			if diff := cmp.Diff(want, all.byMerchant()); diff != "" {
				t.Errorf("reported (-want +got):\n%s", diff)
			}
			for i := range merchants {
				m := fmt.Sprintf("m-%02d", i)
				if got, want := e.merchantBalance(s, m, money.THB), int64(100_00*(i+1)); got != want {
					t.Errorf("%s balance = %d, want %d (credited once)", m, got, want)
				}
			}
			e.audited()
		})
	}
}

// failingQueryDB fails index queries after the first `allowed`.
type failingQueryDB struct {
	settle.DB
	allowed int64
	calls   atomic.Int64
}

func (f *failingQueryDB) Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	if in.IndexName != nil && f.calls.Add(1) > f.allowed {
		return nil, errCrash
	}
	return f.DB.Query(ctx, in, opts...)
}

// TestLargeMerchantIsSettledInPagesAcrossCalls stands in for a merchant
// with a million charges: tiny pages, a deadline that stops every call
// after one page, and a crash in the middle.
func TestLargeMerchantIsSettledInPagesAcrossCalls(t *testing.T) {
	e := newEnv(t)
	ph := mustMarket(t, "PH")
	const charges = 120
	e.fund("w-1", 1_000_000_00, money.PHP)
	var total int64
	for i := range charges {
		amount := int64(1_00 + i)
		total += amount
		e.charge(nov10.Add(time.Duration(i)*time.Second), fmt.Sprintf("c-%03d", i), "m-mega", "w-1", amount, money.PHP)
	}
	e.refund(nov10.Add(time.Hour), "r-1", "c-007", 1_07)
	e.clock.Set(nov11)

	crashing := settle.New(&failingQueryDB{DB: e.db, allowed: 40}, e.table, settle.Options{Now: e.clock.Now, PageItems: 3})
	if _, err := crashing.Run(e.ctx, ph, "2026-11-10", settle.RunOptions{}); !errors.Is(err, errCrash) {
		t.Fatalf("crashing run err = %v", err)
	}
	s := e.settler(settle.Options{PageItems: 3})
	var c collector
	calls := 0
	const callsMax = 1000
	for ; calls < callsMax; calls++ {
		// A deadline already past: each call does one page and stops.
		out, err := s.Run(e.ctx, ph, "2026-11-10", settle.RunOptions{Deadline: e.clock.Now(), OnMerchant: c.On})
		if err != nil {
			t.Fatal(err)
		}
		if out.Done {
			break
		}
	}
	if calls < ledger.UnsettledShards/2 {
		t.Errorf("settled in %d calls; the deadline should have cut it into many", calls)
	}
	want := map[string]totals{"m-mega/PHP/2026-11-10": {Charges: charges, ChargesTotal: total, Refunds: 1, RefundsTotal: 1_07, Net: total - 1_07}}
	if diff := cmp.Diff(want, c.byMerchant()); diff != "" {
		t.Errorf("settled (-want +got):\n%s", diff)
	}
	if got := e.merchantBalance(s, "m-mega", money.PHP); got != total-1_07 {
		t.Errorf("balance = %d, want %d", got, total-1_07)
	}
	e.audited()
}

// TestConcurrentRunsCreditOnce: three ticks of one market-day at once.
func TestConcurrentRunsCreditOnce(t *testing.T) {
	e := newEnv(t)
	my := mustMarket(t, "MY")
	e.fund("w-1", 100_000_00, money.MYR)
	const merchants = 12
	for i := range merchants {
		for j := range 3 {
			e.charge(nov10, fmt.Sprintf("c-%d-%d", i, j), fmt.Sprintf("m-%d", i), "w-1", 10_00, money.MYR)
		}
	}
	e.clock.Set(nov11)
	var wg sync.WaitGroup
	var cs [4]collector
	errs := make([]error, len(cs)-1)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = e.settler(settle.Options{PageItems: 2}).Run(e.ctx, my, "2026-11-10", settle.RunOptions{OnMerchant: cs[i].On})
		})
	}
	wg.Wait()
	for i, err := range errs {
		// Losing a race is a retry for the Broker.
		if err != nil && fault.KindOf(err) != fault.KindThrottled {
			t.Fatalf("run %d: %v", i, err)
		}
	}
	// A later tick finishes whatever a throttled runner left.
	s := e.settler(settle.Options{})
	if _, err := s.Run(e.ctx, my, "2026-11-10", settle.RunOptions{OnMerchant: cs[len(cs)-1].On}); err != nil {
		t.Fatal(err)
	}
	reported := map[string]bool{}
	for i := range cs {
		for _, r := range cs[i].got {
			reported[r.MerchantID] = true
		}
	}
	for i := range merchants {
		m := fmt.Sprintf("m-%d", i)
		if got := e.merchantBalance(s, m, money.MYR); got != 30_00 {
			t.Errorf("%s balance = %d, want 3000", m, got)
		}
		if !reported[m] {
			t.Errorf("%s never reported", m)
		}
	}
	e.audited()
}

// laggingDB is a GSI that lags: index queries do not show the units named in
// hidden (by charge or refund id), as DynamoDB's index may not for an
// unbounded moment after a write. DynamoDB Local's index is up to date at
// once, so the lag is injected here, at the client seam.
type laggingDB struct {
	settle.DB
	mu     sync.Mutex
	hidden map[string]bool
}

func (l *laggingDB) hide(ids ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.hidden == nil {
		l.hidden = map[string]bool{}
	}
	for _, id := range ids {
		l.hidden[id] = true
	}
}

func (l *laggingDB) catchUp() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.hidden = nil
}

func (l *laggingDB) Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	out, err := l.DB.Query(ctx, in, opts...)
	if err != nil || in.IndexName == nil {
		return out, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	kept := out.Items[:0:0]
	for _, it := range out.Items {
		id := ""
		for _, name := range []string{"refund_id", "charge_id"} {
			if v, ok := it[name].(*types.AttributeValueMemberS); ok && id == "" {
				id = v.Value
			}
		}
		if !l.hidden[id] {
			kept = append(kept, it)
		}
	}
	out.Items = kept
	return out, nil
}

// TestChargeHiddenByIndexLagIsSettledLate: 150,000 sold on the 10th, 50,000
// of it not yet in the index when the 10th is settled. The merchant is paid
// 100,000 with the day and the 50,000 with the next run, as a late unit of
// the 11th's settlement: nothing stranded.
func TestChargeHiddenByIndexLagIsSettledLate(t *testing.T) {
	e := newEnv(t)
	id := mustMarket(t, "ID")
	lag := &laggingDB{DB: e.db}
	s := settle.New(lag, e.table, settle.Options{Now: e.clock.Now})
	e.fund("w-1", 1_000_000, money.IDR)
	e.charge(nov10, "c-seen", "m-a", "w-1", 100_000, money.IDR)
	e.charge(nov10.Add(time.Hour), "c-lagging", "m-a", "w-1", 50_000, money.IDR)
	lag.hide("c-lagging")
	e.clock.Set(nov11)
	var c collector
	if _, err := s.Run(e.ctx, id, "2026-11-10", settle.RunOptions{OnMerchant: c.On}); err != nil {
		t.Fatal(err)
	}
	if got := e.merchantBalance(s, "m-a", money.IDR); got != 100_000 {
		t.Errorf("after the 10th: balance %d, want 100000 (the lagging charge not yet seen)", got)
	}
	if uc, _ := unsettled(e.audited(), money.IDR); uc != 50_000 {
		t.Errorf("unsettled after the 10th = %d, want the lagging 50000, still owed", uc)
	}
	// Even a re-run of the 10th under the same lag pays nothing twice.
	if _, err := s.Run(e.ctx, id, "2026-11-10", settle.RunOptions{Restart: true, OnMerchant: c.On}); err != nil {
		t.Fatal(err)
	}
	lag.catchUp()
	e.clock.Set(nov12)
	if _, err := s.Run(e.ctx, id, "2026-11-11", settle.RunOptions{OnMerchant: c.On}); err != nil {
		t.Fatal(err)
	}
	want := map[string]totals{
		"m-a/IDR/2026-11-10": {Charges: 1, ChargesTotal: 100_000, Net: 100_000},
		"m-a/IDR/2026-11-11": {Charges: 1, ChargesTotal: 50_000, LateCharges: 1, LateChargesTotal: 50_000, Net: 50_000},
	}
	if diff := cmp.Diff(want, c.byMerchant()); diff != "" {
		t.Errorf("settlements (-want +got):\n%s", diff)
	}
	if got := e.merchantBalance(s, "m-a", money.IDR); got != 150_000 {
		t.Errorf("balance = %d, want all 150000 sold", got)
	}
	if uc, ur := unsettled(e.audited(), money.IDR); uc != 0 || ur != 0 {
		t.Errorf("unsettled = %d, %d; want none", uc, ur)
	}
}

// staleDB is an index that still shows units after they were settled: each
// index query answers what the first query with the same input answered.
type staleDB struct {
	settle.DB
	mu   sync.Mutex
	seen map[string]*dynamodb.QueryOutput
}

func (s *staleDB) Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	if in.IndexName == nil {
		return s.DB.Query(ctx, in, opts...)
	}
	k := fmt.Sprint(in.ExpressionAttributeValues, in.ExclusiveStartKey)
	s.mu.Lock()
	defer s.mu.Unlock()
	if out, ok := s.seen[k]; ok {
		return out, nil
	}
	out, err := s.DB.Query(ctx, in, opts...)
	if err == nil {
		if s.seen == nil {
			s.seen = map[string]*dynamodb.QueryOutput{}
		}
		s.seen[k] = out
	}
	return out, err
}

// TestStaleIndexRowsAreNotPaidTwice: a run that reads rows of units another
// run already settled sends them, the condition refuses them, and only the
// new unit is paid.
func TestStaleIndexRowsAreNotPaidTwice(t *testing.T) {
	e := newEnv(t)
	th := mustMarket(t, "TH")
	e.fund("w-1", 1_000_000, money.THB)
	for i := range 5 {
		e.charge(nov10, fmt.Sprintf("c-%d", i), "m-a", "w-1", 1_000, money.THB)
	}
	e.clock.Set(nov11)
	stale := &staleDB{DB: e.db}
	s := settle.New(stale, e.table, settle.Options{Now: e.clock.Now})
	if _, err := s.Run(e.ctx, th, "2026-11-10", settle.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	// A charge of the 10th commits late; the stale index still shows the
	// five settled ones and not it.
	e.charge(nov10.Add(20*time.Hour), "c-late", "m-a", "w-1", 7_000, money.THB)
	e.clock.Set(nov11)
	out, err := s.Run(e.ctx, th, "2026-11-10", settle.RunOptions{Restart: true})
	if err != nil || out.Units != 0 {
		t.Fatalf("stale re-run = %+v, %v; want nothing settled again", out, err)
	}
	if got := e.merchantBalance(s, "m-a", money.THB); got != 5_000 {
		t.Errorf("balance after a stale re-run = %d, want 5000", got)
	}
	e.clock.Set(nov12)
	if _, err := e.settler(settle.Options{}).Run(e.ctx, th, "2026-11-11", settle.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := e.merchantBalance(s, "m-a", money.THB); got != 12_000 {
		t.Errorf("balance = %d, want 12000", got)
	}
	e.audited()
}

// TestRunsWhileChargesStillArrive: two runs of the 10th at 00:01:01 while
// charges dated the 10th still commit (a pod whose clock is a little behind,
// a retried write): whatever each run sees, the next day's run pays the
// rest, and every unit is paid once.
func TestRunsWhileChargesStillArrive(t *testing.T) {
	e := newEnv(t)
	my := mustMarket(t, "MY")
	e.fund("w-1", 100_000_00, money.MYR)
	// Kuala Lumpur is UTC+8: the 10th ends at 16:00 UTC.
	midnight := time.Date(2026, 11, 10, 16, 0, 0, 0, time.UTC)
	behind := &clock{t: midnight.Add(-time.Second)} // a charge pod 62 s behind
	late := ledger.New(e.db, e.table, behind.Now)
	e.clock.Set(midnight.Add(61 * time.Second))
	const charges, merchants = 60, 4
	var sold atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range charges {
			req := events.ChargeRequested{ChargeID: fmt.Sprintf("c-%02d", i), Marketplace: "mp",
				MerchantID: fmt.Sprintf("m-%d", i%merchants), PayerWallet: "w-1", Amount: int64(1_00 + i), Currency: "MYR"}
			if out, err := late.Charge(e.ctx, req, money.DefaultLimits()); err != nil || out.Status != ledger.ChargeSucceeded {
				t.Errorf("charge %s = %+v, %v", req.ChargeID, out, err)
				return
			}
			sold.Add(req.Amount)
		}
	})
	for range 2 {
		wg.Go(func() {
			for range 3 {
				_, err := e.settler(settle.Options{PageItems: 4}).Run(e.ctx, my, "2026-11-10", settle.RunOptions{Restart: true})
				if err != nil && fault.KindOf(err) != fault.KindThrottled {
					t.Errorf("run: %v", err)
				}
			}
		})
	}
	wg.Wait()
	if sold.Load() == 0 {
		t.Fatal("nothing sold")
	}
	e.clock.Set(midnight.Add(25 * time.Hour))
	if _, err := e.settler(settle.Options{}).Run(e.ctx, my, "2026-11-11", settle.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	var paid int64
	for i := range merchants {
		paid += e.merchantBalance(e.settler(settle.Options{}), fmt.Sprintf("m-%d", i), money.MYR)
	}
	if paid != sold.Load() {
		t.Errorf("merchants paid %d, payers were debited %d", paid, sold.Load())
	}
	if uc, ur := unsettled(e.audited(), money.MYR); uc != 0 || ur != 0 {
		t.Errorf("unsettled = %d, %d; want none", uc, ur)
	}
}

// TestLateRefundOfSettledChargeIsTakenFromTheMerchant: a refund dated 23:59
// on the 10th commits after the 10th was settled. The payer has the money
// back, so the merchant gives it back: the next run debits it, as a late
// refund.
func TestLateRefundOfSettledChargeIsTakenFromTheMerchant(t *testing.T) {
	e := newEnv(t)
	ph := mustMarket(t, "PH")
	e.fund("w-1", 1_000_000, money.PHP)
	e.charge(nov10, "c-1", "m-a", "w-1", 80_000, money.PHP)
	// Manila is UTC+8: 15:59 UTC is 23:59 on the 10th. The refund pod
	// dates it then; the commit lands after the settlement below.
	refundPod := &clock{t: time.Date(2026, 11, 10, 15, 59, 0, 0, time.UTC)}
	late := ledger.New(e.db, e.table, refundPod.Now)
	e.clock.Set(nov11)
	s := e.settler(settle.Options{})
	if _, err := s.Run(e.ctx, ph, "2026-11-10", settle.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if out, err := late.Refund(e.ctx, events.RefundRequested{RefundID: "r-1", ChargeID: "c-1", Marketplace: "mp",
		Amount: 30_000, Reason: "damaged"}); err != nil || out.Status != ledger.RefundSucceeded {
		t.Fatalf("refund = %+v, %v", out, err)
	}
	if got := e.merchantBalance(s, "m-a", money.PHP); got != 80_000 {
		t.Fatalf("balance before the next run = %d", got)
	}
	e.clock.Set(nov12)
	var c collector
	if _, err := s.Run(e.ctx, ph, "2026-11-11", settle.RunOptions{OnMerchant: c.On}); err != nil {
		t.Fatal(err)
	}
	want := map[string]totals{"m-a/PHP/2026-11-11": {Refunds: 1, RefundsTotal: 30_000, LateRefunds: 1, LateRefundsTotal: 30_000, Net: -30_000}}
	if diff := cmp.Diff(want, c.byMerchant()); diff != "" {
		t.Errorf("next day (-want +got):\n%s", diff)
	}
	if got := e.merchantBalance(s, "m-a", money.PHP); got != 50_000 {
		t.Errorf("balance = %d, want 50000 (80000 sold, 30000 refunded)", got)
	}
	e.audited()
}

// TestSkewedClocksSettleEveryUnitOnce: charge pods 90 s behind and ahead of
// settle's clock, around midnight, over three days of runs.
func TestSkewedClocksSettleEveryUnitOnce(t *testing.T) {
	e := newEnv(t)
	th := mustMarket(t, "TH")
	e.fund("w-1", 100_000_00, money.THB)
	// Bangkok is UTC+7: the 10th ends at 17:00 UTC.
	midnight := time.Date(2026, 11, 10, 17, 0, 0, 0, time.UTC)
	var sold int64
	n := 0
	for _, skew := range []time.Duration{-90 * time.Second, 0, 90 * time.Second} {
		pod := &clock{}
		l := ledger.New(e.db, e.table, pod.Now)
		for _, at := range []time.Duration{-2 * time.Minute, -30 * time.Second, 30 * time.Second, 2 * time.Minute} {
			n++
			pod.Set(midnight.Add(at + skew))
			req := events.ChargeRequested{ChargeID: fmt.Sprintf("c-%d", n), Marketplace: "mp", MerchantID: "m-a",
				PayerWallet: "w-1", Amount: int64(n * 100), Currency: "THB"}
			if out, err := l.Charge(e.ctx, req, money.DefaultLimits()); err != nil || out.Status != ledger.ChargeSucceeded {
				t.Fatalf("charge = %+v, %v", out, err)
			}
			sold += req.Amount
			// settle runs now and then, with its own clock.
			e.clock.Set(midnight.Add(at + 70*time.Second))
			if settle.CheckClosed(th, "2026-11-10", e.clock.Now()) == nil {
				if _, err := e.settler(settle.Options{}).Run(e.ctx, th, "2026-11-10", settle.RunOptions{Restart: true}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for _, day := range []string{"2026-11-11", "2026-11-12"} {
		e.clock.Set(midnight.Add(72 * time.Hour))
		if _, err := e.settler(settle.Options{}).Run(e.ctx, th, day, settle.RunOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if got := e.merchantBalance(e.settler(settle.Options{}), "m-a", money.THB); got != sold {
		t.Errorf("balance = %d, sold %d", got, sold)
	}
	if uc, _ := unsettled(e.audited(), money.THB); uc != 0 {
		t.Errorf("unsettled = %d", uc)
	}
}
