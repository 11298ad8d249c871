// Package audit scans the whole table and checks that money was neither
// created nor lost. `sebelas audit`, the tests and the chaos runs use it.
//
// The conservation invariant of DESIGN.md, per currency, with the items as
// they are stored:
//
//	cash in  =  Σ balance      (kind balance: W#<wallet>/BAL#<cur>, spendable)
//	          + Σ held         (the same items: set aside for a top-up in flight)
//	          + unsettled charges   (Σ amount of succeeded charges without a settlement_id)
//	          − unsettled refunds   (Σ amount of succeeded refunds without a settlement_id)
//	          + Σ merchant balances (kind merchant_balance: MW#<merchant>/BAL#<cur>)
//	          + captured top-ups    (Σ amount of kind topup, status succeeded: money
//	                                 that left for the mobile operator)
//
// where cash in is Σ amount of kind cashin (K#<id>). Every money movement
// keeps it: a charge moves amount from a balance to the unsettled charges; a
// refund moves it back to a balance and adds it to the unsettled refunds;
// settlement marks units settled and moves their net into the merchant's
// balance in the same transaction (internal/settle); a top-up holds, then
// captures (out) or releases (back). Nothing else moves money.
//
// The other checks:
//   - no balance or held amount below zero; a negative merchant balance is
//     reported too (a merchant that owes refunds of settled charges: a
//     person follows it up);
//   - every charge: 0 <= refunded <= amount, nothing refunded of a declined
//     charge, and refunded = Σ its succeeded refunds (each in its currency,
//     for its merchant);
//   - every succeeded charge and refund is either settled (settlement_id) or
//     in the unsettled index (gsi1pk UN#...), never both and never neither:
//     a unit in neither would never be paid;
//   - every settlement equals the sum of the units marked with its id
//     (counts, totals, the late ones dated before its business date, net =
//     charges − refunds, in its market's currency), and a merchant's balance
//     equals the sum of its settlements' nets;
//   - Σ held = Σ amount of top-ups held or pending (ledger/hold.go).
//
// The scan is not a snapshot: run it when nothing is moving (after a load
// test has drained, or in a maintenance window). Memory grows with the
// settlements and with the charges that were refunded or declined, not
// with every charge.
package audit

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

	"github.com/sebelas/sebelas/internal/ledger"
	"github.com/sebelas/sebelas/internal/market"
	"github.com/sebelas/sebelas/internal/money"
	"github.com/sebelas/sebelas/internal/settle"
	"github.com/sebelas/sebelas/internal/table"
)

// Kinds the audit reads that other packages write. The top-up's item is
// described in internal/ledger/hold.go: kind "topup" with status, amount
// and currency.
const (
	kindBalance = "balance"
	kindCashIn  = "cashin"
	kindCharge  = "charge"
	kindTopup   = "topup"

	topupSucceeded = "succeeded"
	topupHeld      = "held"
	topupPending   = "pending"
)

// Names of the checks, as reported.
const (
	CheckConservation    = "conservation"
	CheckNegativeBalance = "negative_balance"
	CheckRefundedCharge  = "refunded_within_charge"
	CheckSettlementSum   = "settlement_equals_items"
	CheckUnitIndexed     = "unit_settled_or_indexed"
	CheckMerchantBalance = "merchant_balance_equals_settlements"
	CheckHeld            = "held_equals_topups_in_flight"
	CheckUnreadable      = "unreadable_item"
)

const (
	// violationsKeptMax bounds the violations a report lists: a corrupt
	// table could break a rule per item, and the first few hundred say
	// what is wrong; the total is still counted.
	violationsKeptMax = 200
	// scanSegmentsDefault parallel segments hide round-trip latency without
	// taking a large share of the table's read capacity.
	scanSegmentsDefault  = 4
	scanPageItemsDefault = 1000
	currencyColumnsWidth = 3
)

// Violation is one broken rule.
type Violation struct {
	Check   string
	Subject string // the item or group at fault: "C#ch-1", "IDR", ...
	Detail  string
}

func (v Violation) String() string { return v.Check + " " + v.Subject + ": " + v.Detail }

// Totals are one currency's terms of the conservation invariant, in minor
// units.
type Totals struct {
	Currency         string
	CashIn           int64
	Balances         int64
	Held             int64
	UnsettledCharges int64
	UnsettledRefunds int64
	MerchantBalances int64
	CapturedTopups   int64
}

// Accounted is the right-hand side of the invariant.
func (t Totals) Accounted() int64 {
	return t.Balances + t.Held + t.UnsettledCharges - t.UnsettledRefunds + t.MerchantBalances + t.CapturedTopups
}

// Report is the outcome of an audit.
type Report struct {
	Items      int64
	ByKind     map[string]int64
	Currencies []Totals // sorted by currency
	Violations []Violation
	// ViolationsTotal counts every violation; Violations keeps the first
	// violationsKeptMax.
	ViolationsTotal int
}

// OK reports whether no rule was broken.
func (r Report) OK() bool { return r.ViolationsTotal == 0 }

// Has reports whether a violation of check was found.
func (r Report) Has(check string) bool {
	for _, v := range r.Violations {
		if v.Check == check {
			return true
		}
	}
	return false
}

// Write prints the report for an operator.
func (r Report) Write(w io.Writer) error {
	var b strings.Builder
	kinds := make([]string, 0, len(r.ByKind))
	for k := range r.ByKind {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	fmt.Fprintf(&b, "items scanned: %d\n", r.Items)
	for _, k := range kinds {
		fmt.Fprintf(&b, "  %-22s %d\n", k, r.ByKind[k])
	}
	b.WriteString("\nconservation, per currency:\n")
	b.WriteString("  cash in = balances + held + unsettled charges - unsettled refunds + merchant balances + captured top-ups\n")
	for _, t := range r.Currencies {
		c := money.Currency(t.Currency)
		// Major units, the currency named once at the start of the line.
		f := func(v int64) string {
			return strings.TrimPrefix(money.Amount{Minor: v, Currency: c}.String(), t.Currency+" ")
		}
		status := "ok"
		if t.CashIn != t.Accounted() {
			status = fmt.Sprintf("OFF BY %s", f(t.Accounted()-t.CashIn))
		}
		fmt.Fprintf(&b, "  %-*s %s = %s + %s + %s - %s + %s + %s  %s\n", currencyColumnsWidth, t.Currency,
			f(t.CashIn), f(t.Balances), f(t.Held), f(t.UnsettledCharges), f(t.UnsettledRefunds),
			f(t.MerchantBalances), f(t.CapturedTopups), status)
	}
	if r.OK() {
		b.WriteString("\nchecks: conservation, no negative balance, refunded <= charged, every unit settled or indexed, settlements = their units, merchant balances = their settlements, held = top-ups in flight\nresult: OK\n")
	} else {
		fmt.Fprintf(&b, "\nVIOLATIONS: %d", r.ViolationsTotal)
		if r.ViolationsTotal > len(r.Violations) {
			fmt.Fprintf(&b, " (first %d shown)", len(r.Violations))
		}
		b.WriteString("\n")
		for _, v := range r.Violations {
			fmt.Fprintf(&b, "  %s\n", v)
		}
		b.WriteString("result: FAIL\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Scanner is the part of the DynamoDB API the audit uses.
type Scanner interface {
	Scan(ctx context.Context, in *dynamodb.ScanInput, opts ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

var _ Scanner = (*dynamodb.Client)(nil)

// Options tune a scan; the zero value takes the defaults.
type Options struct {
	Segments  int32 // parallel scan segments
	PageItems int32
}

// Run scans tableName with consistent reads and checks every rule.
func Run(ctx context.Context, db Scanner, tableName string, opts Options) (Report, error) {
	if opts.Segments <= 0 {
		opts.Segments = scanSegmentsDefault
	}
	if opts.PageItems <= 0 {
		opts.PageItems = scanPageItemsDefault
	}
	a := New()
	g, ctx := errgroup.WithContext(ctx)
	for seg := range opts.Segments {
		g.Go(func() error {
			var start map[string]types.AttributeValue
			for {
				out, err := db.Scan(ctx, &dynamodb.ScanInput{
					TableName: aws.String(tableName), ConsistentRead: aws.Bool(true),
					Segment: aws.Int32(seg), TotalSegments: aws.Int32(opts.Segments),
					Limit: aws.Int32(opts.PageItems), ExclusiveStartKey: start,
				})
				if err != nil {
					return table.Classify(err)
				}
				for _, it := range out.Items {
					a.Add(it)
				}
				if len(out.LastEvaluatedKey) == 0 {
					return nil
				}
				start = out.LastEvaluatedKey
			}
		})
	}
	if err := g.Wait(); err != nil {
		return Report{}, fmt.Errorf("audit: scan %s: %w", tableName, err)
	}
	return a.Report(), nil
}

// unsettledIndexPrefix is the gsi1pk prefix of a unit not yet settled
// (ledger/unsettled.go).
const unsettledIndexPrefix = "UN#"

// sums are the units marked settled into one settlement.
type sums struct {
	Currency, Merchant                                           string
	Charges, ChargesTotal, Refunds, RefundsTotal                 int64
	LateCharges, LateChargesTotal, LateRefunds, LateRefundsTotal int64
}

type settlementView struct {
	Kind             string `dynamodbav:"kind"`
	SettlementID     string `dynamodbav:"settlement_id"`
	MerchantID       string `dynamodbav:"merchant_id"`
	Market           string `dynamodbav:"market"`
	Currency         string `dynamodbav:"currency"`
	BusinessDate     string `dynamodbav:"business_date"`
	ChargesCount     int64  `dynamodbav:"charges_count"`
	ChargesTotal     int64  `dynamodbav:"charges_total"`
	RefundsCount     int64  `dynamodbav:"refunds_count"`
	RefundsTotal     int64  `dynamodbav:"refunds_total"`
	LateChargesCount int64  `dynamodbav:"late_charges_count"`
	LateChargesTotal int64  `dynamodbav:"late_charges_total"`
	LateRefundsCount int64  `dynamodbav:"late_refunds_count"`
	LateRefundsTotal int64  `dynamodbav:"late_refunds_total"`
	Net              int64  `dynamodbav:"net"`
}

// view is every attribute the audit reads, whatever the kind; each kind
// uses its own.
type view struct {
	PK         string `dynamodbav:"pk"`
	SK         string `dynamodbav:"sk"`
	Kind       string `dynamodbav:"kind"`
	Status     string `dynamodbav:"status"`
	Amount     int64  `dynamodbav:"amount"`
	Currency   string `dynamodbav:"currency"`
	Balance    int64  `dynamodbav:"balance"`
	Held       int64  `dynamodbav:"held"`
	Refunded   int64  `dynamodbav:"refunded"`
	ChargeID   string `dynamodbav:"charge_id"` // a charge's own id, or a refund's charge
	MerchantID string `dynamodbav:"merchant_id"`
	LocalDate  string `dynamodbav:"local_date"`
	// A unit's settlement, or its place in the unsettled index.
	SettlementID string `dynamodbav:"settlement_id"`
	GSI1PK       string `dynamodbav:"gsi1pk"`
}

// chargeNote is what is kept of a charge that was refunded or declined.
type chargeNote struct {
	Status, Currency, Merchant string
	Amount, Refunded           int64
}

// refundSum is what the succeeded refunds of one charge add up to.
type refundSum struct {
	Total      int64
	Currencies map[string]bool
	Merchants  map[string]bool
}

// Auditor accumulates items and checks them; Add is safe for concurrent
// use. Tests feed it directly; Run feeds it from a scan.
type Auditor struct {
	mu          sync.Mutex
	items       int64
	byKind      map[string]int64
	totals      map[string]*Totals
	settled     map[string]*sums // settlement_id -> its units
	settlements map[string]settlementView
	merchants   map[[2]string]int64 // (merchant, currency) -> balance
	charges     map[string]chargeNote
	refunds     map[string]*refundSum
	inFlight    map[string]int64 // currency -> top-ups held or pending
	violations  []Violation
	total       int
	reported    bool
}

// New returns an empty Auditor.
func New() *Auditor {
	return &Auditor{byKind: map[string]int64{}, totals: map[string]*Totals{}, settled: map[string]*sums{},
		settlements: map[string]settlementView{}, merchants: map[[2]string]int64{},
		charges: map[string]chargeNote{}, refunds: map[string]*refundSum{}, inFlight: map[string]int64{}}
}

func (a *Auditor) violate(check, subject, format string, args ...any) {
	a.total++
	if len(a.violations) < violationsKeptMax {
		a.violations = append(a.violations, Violation{Check: check, Subject: subject, Detail: fmt.Sprintf(format, args...)})
	}
}

func (a *Auditor) totalsOf(currency string) *Totals {
	t := a.totals[currency]
	if t == nil {
		t = &Totals{Currency: currency}
		a.totals[currency] = t
	}
	return t
}

// unit books one succeeded charge or refund: into its settlement's sums
// when it is settled, into the currency's unsettled sums when not.
func (a *Auditor) unit(subject string, v view, refund bool) {
	indexed := strings.HasPrefix(v.GSI1PK, unsettledIndexPrefix)
	switch {
	case v.SettlementID != "" && indexed:
		a.violate(CheckUnitIndexed, subject, "settled into %s and still in the unsettled index", v.SettlementID)
	case v.SettlementID == "" && !indexed:
		a.violate(CheckUnitIndexed, subject, "neither settled nor in the unsettled index (gsi1pk %q): it would never be paid", v.GSI1PK)
	}
	if v.SettlementID == "" {
		t := a.totalsOf(v.Currency)
		if refund {
			t.UnsettledRefunds += v.Amount
		} else {
			t.UnsettledCharges += v.Amount
		}
		return
	}
	s := a.settled[v.SettlementID]
	if s == nil {
		s = &sums{Currency: v.Currency, Merchant: v.MerchantID}
		a.settled[v.SettlementID] = s
	}
	if s.Currency != v.Currency || s.Merchant != v.MerchantID {
		a.violate(CheckSettlementSum, subject, "%s for %s settled into %s, which has units in %s for %s", v.Currency, v.MerchantID, v.SettlementID, s.Currency, s.Merchant)
	}
	// The settlement's business date is in its id, so the late sums need
	// no memory of the units.
	date, _ := settle.SettlementDate(v.SettlementID)
	late := v.LocalDate < date
	switch {
	case refund:
		s.Refunds++
		s.RefundsTotal += v.Amount
		if late {
			s.LateRefunds++
			s.LateRefundsTotal += v.Amount
		}
	default:
		s.Charges++
		s.ChargesTotal += v.Amount
		if late {
			s.LateCharges++
			s.LateChargesTotal += v.Amount
		}
	}
}

// Add takes one item as scanned.
func (a *Auditor) Add(item map[string]types.AttributeValue) {
	var v view
	err := attributevalue.UnmarshalMap(item, &v)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.items++
	subject := v.PK + "/" + v.SK
	if err != nil {
		a.byKind["(unreadable)"]++
		a.violate(CheckUnreadable, subject, "%v", err)
		return
	}
	kind := v.Kind
	if kind == "" {
		kind = "(none)"
	}
	a.byKind[kind]++
	switch v.Kind {
	case kindCashIn:
		a.totalsOf(v.Currency).CashIn += v.Amount
	case kindBalance:
		t := a.totalsOf(v.Currency)
		t.Balances += v.Balance
		t.Held += v.Held
		if v.Balance < 0 || v.Held < 0 {
			a.violate(CheckNegativeBalance, subject, "balance %d, held %d", v.Balance, v.Held)
		}
	case kindCharge:
		a.addCharge(subject, v)
	case ledger.KindRefund:
		if v.Status != ledger.RefundSucceeded {
			return // a rejection moved nothing
		}
		a.unit(subject, v, true)
		r := a.refunds[v.ChargeID]
		if r == nil {
			r = &refundSum{Currencies: map[string]bool{}, Merchants: map[string]bool{}}
			a.refunds[v.ChargeID] = r
		}
		r.Total += v.Amount
		r.Currencies[v.Currency] = true
		r.Merchants[v.MerchantID] = true
	case settle.KindSettlement:
		var sv settlementView
		if err := attributevalue.UnmarshalMap(item, &sv); err != nil {
			a.violate(CheckUnreadable, subject, "%v", err)
			return
		}
		a.settlements[sv.SettlementID] = sv
	case settle.KindMerchantBalance:
		a.totalsOf(v.Currency).MerchantBalances += v.Balance
		a.merchants[[2]string{v.MerchantID, v.Currency}] += v.Balance
		if v.Balance < 0 {
			a.violate(CheckNegativeBalance, subject, "merchant %s owes %d %s", v.MerchantID, -v.Balance, v.Currency)
		}
	case kindTopup:
		switch v.Status {
		case topupSucceeded:
			a.totalsOf(v.Currency).CapturedTopups += v.Amount
		case topupHeld, topupPending:
			a.inFlight[v.Currency] += v.Amount
		}
	}
}

func (a *Auditor) addCharge(subject string, v view) {
	if v.Refunded < 0 || v.Refunded > v.Amount {
		a.violate(CheckRefundedCharge, subject, "refunded %d of a charge of %d", v.Refunded, v.Amount)
	}
	if v.Status != ledger.ChargeSucceeded {
		if v.Refunded != 0 {
			a.violate(CheckRefundedCharge, subject, "%s charge with %d refunded", v.Status, v.Refunded)
		}
		a.charges[v.ChargeID] = chargeNote{Status: v.Status, Currency: v.Currency, Merchant: v.MerchantID, Amount: v.Amount, Refunded: v.Refunded}
		return
	}
	a.unit(subject, v, false)
	if v.Refunded != 0 {
		a.charges[v.ChargeID] = chargeNote{Status: v.Status, Currency: v.Currency, Merchant: v.MerchantID, Amount: v.Amount, Refunded: v.Refunded}
	}
}

// Report runs the checks that need every item and returns the outcome.
// Call it once, after the last Add.
func (a *Auditor) Report() Report {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.reported {
		panic("audit: Report called twice") // it folds the unsettled sums into the totals
	}
	a.reported = true

	// Refunds against their charges.
	for id, r := range a.refunds {
		c, ok := a.charges[id]
		subject := "C#" + id
		switch {
		case !ok:
			a.violate(CheckRefundedCharge, subject, "succeeded refunds total %d but the charge records none refunded (or is missing)", r.Total)
			continue
		case c.Status != ledger.ChargeSucceeded:
			a.violate(CheckRefundedCharge, subject, "%d refunded of a %s charge", r.Total, c.Status)
		case c.Refunded != r.Total:
			a.violate(CheckRefundedCharge, subject, "charge records %d refunded, its succeeded refunds total %d", c.Refunded, r.Total)
		}
		if len(r.Currencies) != 1 || !r.Currencies[c.Currency] || len(r.Merchants) != 1 || !r.Merchants[c.Merchant] {
			a.violate(CheckRefundedCharge, subject, "refunds in %v for %v, charge in %s for %s", keys(r.Currencies), keys(r.Merchants), c.Currency, c.Merchant)
		}
	}
	for id, c := range a.charges {
		if _, ok := a.refunds[id]; !ok && c.Refunded != 0 {
			a.violate(CheckRefundedCharge, "C#"+id, "charge records %d refunded without any succeeded refund", c.Refunded)
		}
	}

	// Settlements against the units marked with their ids.
	settledNet := map[[2]string]int64{}
	for id, sv := range a.settlements {
		subject := fmt.Sprintf("S#%s#%s/%s", sv.MerchantID, sv.BusinessDate, sv.Currency)
		s := a.settled[id]
		if s == nil {
			s = &sums{}
		}
		want := settlementView{ChargesCount: s.Charges, ChargesTotal: s.ChargesTotal, RefundsCount: s.Refunds, RefundsTotal: s.RefundsTotal,
			LateChargesCount: s.LateCharges, LateChargesTotal: s.LateChargesTotal, LateRefundsCount: s.LateRefunds, LateRefundsTotal: s.LateRefundsTotal}
		if date, ok := settle.SettlementDate(id); !ok || date != sv.BusinessDate {
			a.violate(CheckSettlementSum, subject, "id %s does not name business date %s", id, sv.BusinessDate)
		}
		got := settlementView{ChargesCount: sv.ChargesCount, ChargesTotal: sv.ChargesTotal, RefundsCount: sv.RefundsCount,
			RefundsTotal: sv.RefundsTotal, LateChargesCount: sv.LateChargesCount, LateChargesTotal: sv.LateChargesTotal,
			LateRefundsCount: sv.LateRefundsCount, LateRefundsTotal: sv.LateRefundsTotal}
		if got != want {
			a.violate(CheckSettlementSum, subject, "records %+v; its units are %+v", got, want)
		}
		if s.Charges+s.Refunds > 0 && (s.Currency != sv.Currency || s.Merchant != sv.MerchantID) {
			a.violate(CheckSettlementSum, subject, "units in %s for %s", s.Currency, s.Merchant)
		}
		if sv.Net != sv.ChargesTotal-sv.RefundsTotal {
			a.violate(CheckSettlementSum, subject, "net %d is not %d - %d", sv.Net, sv.ChargesTotal, sv.RefundsTotal)
		}
		if m, err := market.ByCode(sv.Market); err != nil || string(m.Currency) != sv.Currency {
			a.violate(CheckSettlementSum, subject, "market %q does not settle in %s", sv.Market, sv.Currency)
		}
		settledNet[[2]string{sv.MerchantID, sv.Currency}] += sv.Net
	}
	for id, s := range a.settled {
		if _, ok := a.settlements[id]; !ok {
			a.violate(CheckSettlementSum, id, "%d charges and %d refunds marked settled into a settlement that does not exist", s.Charges, s.Refunds)
		}
	}
	for k, net := range settledNet {
		if got := a.merchants[k]; got != net {
			a.violate(CheckMerchantBalance, "MW#"+k[0]+"/BAL#"+k[1], "balance %d, its settlements' nets total %d", got, net)
		}
	}
	for k, bal := range a.merchants {
		if _, ok := settledNet[k]; !ok && bal != 0 {
			a.violate(CheckMerchantBalance, "MW#"+k[0]+"/BAL#"+k[1], "balance %d without any settlement", bal)
		}
	}

	// Conservation, and holds against top-ups in flight.
	var currencies []string
	for c := range a.totals {
		currencies = append(currencies, c)
	}
	for c := range a.inFlight {
		if _, ok := a.totals[c]; !ok {
			currencies = append(currencies, c)
		}
	}
	sort.Strings(currencies)
	r := Report{Items: a.items, ByKind: map[string]int64{}}
	for k, n := range a.byKind {
		r.ByKind[k] = n
	}
	for _, c := range currencies {
		t := *a.totalsOf(c)
		if t.CashIn != t.Accounted() {
			a.violate(CheckConservation, c, "cash in %d, accounted for %d (%+d): balances %d + held %d + unsettled charges %d - unsettled refunds %d + merchant balances %d + captured top-ups %d",
				t.CashIn, t.Accounted(), t.Accounted()-t.CashIn, t.Balances, t.Held, t.UnsettledCharges, t.UnsettledRefunds, t.MerchantBalances, t.CapturedTopups)
		}
		if t.Held != a.inFlight[c] {
			a.violate(CheckHeld, c, "held %d, top-ups held or pending %d", t.Held, a.inFlight[c])
		}
		r.Currencies = append(r.Currencies, t)
	}
	sort.Slice(a.violations, func(i, j int) bool {
		if a.violations[i].Check != a.violations[j].Check {
			return a.violations[i].Check < a.violations[j].Check
		}
		return a.violations[i].Subject < a.violations[j].Subject
	})
	r.Violations = append([]Violation(nil), a.violations...)
	r.ViolationsTotal = a.total
	return r
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
