package fraudeval

import (
	"context"
	"fmt"
	"io"
	"iter"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/fraud"
	"github.com/sebelas/sebelas/internal/market"
	"github.com/sebelas/sebelas/internal/money"
)

// Counts are the confusion counts of one slice of traffic. "Flagged" is a
// review or a deny: the payment did not go through unattended.
type Counts struct {
	Payments, Fraud                 int64
	FraudDenied, FraudReviewed      int64
	LegitDenied, LegitReviewed      int64
	FraudAmountUSD, CaughtAmountUSD float64 // fraud money, and the part flagged
}

func (c *Counts) add(t Txn, decision string, usd float64) {
	c.Payments++
	flagged := decision != events.DecisionAllow
	if t.Fraud {
		c.Fraud++
		c.FraudAmountUSD += usd
		if flagged {
			c.CaughtAmountUSD += usd
		}
	}
	switch {
	case t.Fraud && decision == events.DecisionDeny:
		c.FraudDenied++
	case t.Fraud && decision == events.DecisionReview:
		c.FraudReviewed++
	case !t.Fraud && decision == events.DecisionDeny:
		c.LegitDenied++
	case !t.Fraud && decision == events.DecisionReview:
		c.LegitReviewed++
	}
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// DenyPrecision is denied fraud over everything denied.
func (c Counts) DenyPrecision() float64 {
	return ratio(c.FraudDenied, c.FraudDenied+c.LegitDenied)
}

// LegitFlaggedRate is legitimate payments denied or held over legitimate
// payments.
func (c Counts) LegitFlaggedRate() float64 {
	return ratio(c.LegitDenied+c.LegitReviewed, c.Payments-c.Fraud)
}

// Precision is flagged fraud over everything flagged.
func (c Counts) Precision() float64 {
	tp := c.FraudDenied + c.FraudReviewed
	return ratio(tp, tp+c.LegitDenied+c.LegitReviewed)
}

// Recall is flagged fraud over all fraud.
func (c Counts) Recall() float64 { return ratio(c.FraudDenied+c.FraudReviewed, c.Fraud) }

// DenyRecall is denied fraud over all fraud.
func (c Counts) DenyRecall() float64 { return ratio(c.FraudDenied, c.Fraud) }

// FalseDeclineRate is legitimate payments denied over legitimate payments.
func (c Counts) FalseDeclineRate() float64 { return ratio(c.LegitDenied, c.Payments-c.Fraud) }

// FalseReviewRate is legitimate payments held for review over legitimate
// payments: not lost, but a person's time and a waiting customer.
func (c Counts) FalseReviewRate() float64 { return ratio(c.LegitReviewed, c.Payments-c.Fraud) }

// AmountRecall is the share of fraud money flagged: what the wallet would
// not have to compensate.
func (c Counts) AmountRecall() float64 {
	if c.FraudAmountUSD == 0 {
		return 0
	}
	return c.CaughtAmountUSD / c.FraudAmountUSD
}

// Outcome is one scorer's results on the traffic: the confusion counts
// overall, on the festival day and by pattern, and the ranking quality of
// its score (ROC-AUC).
type Outcome struct {
	Name      string
	Total     Counts
	Festival  Counts
	ByPattern map[string]*Counts
	AUC       float64
	scores    []scored
}

type scored struct {
	score float64
	fraud bool
}

func newOutcome(name string) *Outcome { return &Outcome{Name: name, ByPattern: map[string]*Counts{}} }

func (o *Outcome) add(t Txn, decision string, score, usd float64) {
	o.Total.add(t, decision, usd)
	if t.Festival {
		o.Festival.add(t, decision, usd)
	}
	if o.ByPattern[t.Pattern] == nil {
		o.ByPattern[t.Pattern] = &Counts{}
	}
	o.ByPattern[t.Pattern].add(t, decision, usd)
	o.scores = append(o.scores, scored{score, t.Fraud})
}

func (o *Outcome) finish() {
	o.AUC = rocAUC(o.scores)
	o.scores = nil
}

// rocAUC is the probability that a random fraud scores above a random
// legitimate payment (ties count half): the Mann-Whitney statistic.
func rocAUC(s []scored) float64 {
	sort.Slice(s, func(a, b int) bool { return s[a].score < s[b].score })
	var pos, neg int64
	var rankSum float64
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && s[j].score == s[i].score {
			j++
		}
		mid := float64(i+j+1) / 2 // mean 1-based rank of the tie group
		for k := i; k < j; k++ {
			if s[k].fraud {
				pos++
				rankSum += mid
			} else {
				neg++
			}
		}
		i = j
	}
	if pos == 0 || neg == 0 {
		return 0
	}
	return (rankSum - float64(pos)*float64(pos+1)/2) / (float64(pos) * float64(neg))
}

// NaiveRuleName names the baseline every report compares with.
const NaiveRuleName = "naive PaySim rule"

// naiveVerdict is the baseline a PaySim user starts from: a transfer or
// cash-out that empties the balance is fraud. Its score is the share of the
// balance sent (0 for other types and unknown balances); at 99% or more it
// denies, at 50% it reviews.
func naiveVerdict(t Txn) (string, float64) {
	typ := t.Payment.TypeOrKind()
	if (typ != fraud.TypeTransfer && typ != fraud.TypeCashOut) || t.Balance <= 0 {
		return events.DecisionAllow, 0
	}
	share := min(float64(t.Payment.Amount)/float64(t.Balance), 1)
	switch {
	case share >= 0.99:
		return events.DecisionDeny, share
	case share >= 0.5:
		return events.DecisionReview, share
	}
	return events.DecisionAllow, share
}

// Report is the result of one evaluation.
type Report struct {
	Source       string // what was evaluated, for the header
	RulesVersion string
	Rules        int
	Total        Counts
	ByMarket     map[string]*Counts
	ByPattern    map[string]*Counts
	ByReason     map[string][2]int64 // reason -> payments it fired on: fraud, legit
	// Scorers are the rules' outcome, then the naive rule's.
	Scorers []*Outcome
	// CashIns are money-in rows recorded as history, not scored.
	CashIns int64
	// RoundTrips is DynamoDB round trips per payment the same traffic would
	// cost with the DynamoDB store (counted by the in-memory store).
	RoundTrips float64
	// The extra calls behind RoundTrips, per payment: planned second
	// counter writes, device-item updates, balance reads (in parallel).
	SecondWrites, DeviceLookups, BalanceReads float64
	// ReceiverWrites: inflow updates of receiving wallets (transfers), per
	// payment, in parallel with the payer's update.
	ReceiverWrites float64
	ScoreNs        float64 // mean scoring time per payment, in-memory store included
	Elapsed        time.Duration
}

// Slice iterates over txns.
func Slice(txns []Txn) iter.Seq2[Txn, error] {
	return func(yield func(Txn, error) bool) {
		for _, t := range txns {
			if !yield(t, nil) {
				return
			}
		}
	}
}

// Run replays txns, in order, through a scorer with a fresh in-memory store
// and the rules of rs, and counts the outcomes. Warm-up payments are scored
// (they build the profiles) but not counted; cash-ins are history only.
func Run(ctx context.Context, source string, txns iter.Seq2[Txn, error], rs *fraud.Ruleset) (*Report, error) {
	store := fraud.NewMemoryStore()
	var balance struct {
		wallet, currency string
		value            int64
	}
	// The scorer asks for the balance of the payment being scored only; a
	// negative balance is unknown (a PaySim row with none).
	store.Balance = func(wallet, currency string) (int64, bool) {
		if wallet == balance.wallet && currency == balance.currency && balance.value >= 0 {
			return balance.value, true
		}
		return 0, false
	}
	scorer := &fraud.Scorer{Rules: fraud.StaticRules{Rules: rs}, Store: store, Rates: fraud.NewMarketRates()}
	rules, naive := newOutcome("rules "+rs.Version), newOutcome(NaiveRuleName)
	r := &Report{Source: source, RulesVersion: rs.Version, Rules: rs.Rules(),
		ByMarket: map[string]*Counts{}, ByReason: map[string][2]int64{}, Scorers: []*Outcome{rules, naive}}
	start := time.Now()
	var i int64
	var warm struct{ trips, n, second, device, balances, receivers int64 }
	for txn, err := range txns {
		if err != nil {
			return nil, err
		}
		i++
		t := &txn
		if t.CashIn {
			store.CashIn(fraud.Inflow{Wallet: t.Payment.Wallet, Currency: t.Payment.Currency, From: t.Payment.Payee,
				Amount: t.Payment.Amount, At: t.Payment.At.Unix()})
			if !t.Warmup {
				r.CashIns++
			}
			continue
		}
		if !t.Warmup && warm.n == 0 {
			// The calls of the warm-up are not the period's.
			warm.trips, warm.n = store.RoundTrips()
			warm.second, warm.device, warm.balances = store.Calls()
			warm.receivers = store.ReceiverWrites()
		}
		balance.wallet, balance.currency, balance.value = t.Payment.Wallet, t.Payment.Currency, t.Balance
		v, f, err := scorer.Score(ctx, t.Payment)
		if err != nil {
			return nil, fmt.Errorf("payment %d: %w", i, err)
		}
		if len(v.Errors) > 0 {
			return nil, fmt.Errorf("payment %d: rules failed: %s", i, strings.Join(v.Errors, "; "))
		}
		if t.Warmup {
			continue
		}
		usd := float64(t.Payment.Amount) / usdUnits(f.Market)
		r.Total.add(*t, v.Decision, usd)
		rules.add(*t, v.Decision, float64(v.Score), usd)
		nd, ns := naiveVerdict(*t)
		naive.add(*t, nd, ns, usd)
		if r.ByMarket[f.Market] == nil {
			r.ByMarket[f.Market] = &Counts{}
		}
		r.ByMarket[f.Market].add(*t, v.Decision, usd)
		for _, reason := range v.Reasons {
			c := r.ByReason[reason]
			if t.Fraud {
				c[0]++
			} else {
				c[1]++
			}
			r.ByReason[reason] = c
		}
	}
	r.Elapsed = time.Since(start)
	r.ByPattern = rules.ByPattern
	for _, o := range r.Scorers {
		o.finish()
	}
	trips, n := store.RoundTrips()
	second, device, balances := store.Calls()
	n -= warm.n
	r.RoundTrips = ratio(trips-warm.trips, n)
	r.SecondWrites, r.DeviceLookups, r.BalanceReads = ratio(second-warm.second, n), ratio(device-warm.device, n), ratio(balances-warm.balances, n)
	r.ReceiverWrites = ratio(store.ReceiverWrites()-warm.receivers, n)
	if i > 0 {
		r.ScoreNs = float64(r.Elapsed.Nanoseconds()) / float64(i)
	}
	return r, nil
}

// usdUnits is minor units per USD of a market, for amount-weighted figures;
// for a PaySim file (no market rates known) amounts are counted in its units.
func usdUnits(code string) float64 {
	if u, ok := unitsPerUSD[code]; ok {
		return u
	}
	return 1
}

// WriteMarkdown writes the report as the Markdown tables of docs/fraud-eval.md.
func (r *Report) WriteMarkdown(w io.Writer, amountUnit string) {
	pct2 := func(x float64) string { return fmt.Sprintf("%.3f%%", 100*x) }
	fmt.Fprintf(w, "Source: %s. Rules version %s (%d rules).\n\n", r.Source, r.RulesVersion, r.Rules)
	if r.Total.Payments == 0 {
		fmt.Fprintln(w, "No payments to score.")
		return
	}
	t := r.Total
	fmt.Fprintf(w, "| payments | fraud | precision | recall (review or deny) | recall (deny) | fraud %s flagged | false-decline rate | false-review rate |\n", amountUnit)
	fmt.Fprintf(w, "|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	fmt.Fprintf(w, "| %d | %d | %s | %s | %s | %s | %s | %s |\n\n", t.Payments, t.Fraud, pct(t.Precision()), pct(t.Recall()),
		pct(t.DenyRecall()), pct(t.AmountRecall()), pct2(t.FalseDeclineRate()), pct2(t.FalseReviewRate()))

	if len(r.ByPattern) > 1 {
		fmt.Fprintf(w, "By pattern (fraud: recall; legitimate look-alikes: how often they were stopped):\n\n")
		fmt.Fprintf(w, "| pattern | payments | denied | reviewed | allowed |\n|---|---:|---:|---:|---:|\n")
		for _, name := range sortedPatterns(r.ByPattern) {
			c := r.ByPattern[name]
			denied, reviewed := c.FraudDenied+c.LegitDenied, c.FraudReviewed+c.LegitReviewed
			fmt.Fprintf(w, "| %s | %d | %s | %s | %s |\n", name, c.Payments, pct(ratio(denied, c.Payments)),
				pct(ratio(reviewed, c.Payments)), pct(ratio(c.Payments-denied-reviewed, c.Payments)))
		}
		fmt.Fprintln(w)
	}
	if len(r.ByMarket) > 1 {
		fmt.Fprintf(w, "By market:\n\n| market | payments | fraud | precision | recall | false-decline rate | false-review rate |\n|---|---:|---:|---:|---:|---:|---:|\n")
		for _, m := range market.All() {
			c, ok := r.ByMarket[m.Code]
			if !ok {
				continue
			}
			fmt.Fprintf(w, "| %s | %d | %d | %s | %s | %s | %s |\n", m.Code, c.Payments, c.Fraud, pct(c.Precision()), pct(c.Recall()),
				pct2(c.FalseDeclineRate()), pct2(c.FalseReviewRate()))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "Reasons (payments each rule's reason appeared on):\n\n| reason | fraud | legitimate |\n|---|---:|---:|\n")
	reasons := make([]string, 0, len(r.ByReason))
	for k := range r.ByReason {
		reasons = append(reasons, k)
	}
	sort.Slice(reasons, func(a, b int) bool {
		ca, cb := r.ByReason[reasons[a]], r.ByReason[reasons[b]]
		if ca[0]+ca[1] != cb[0]+cb[1] {
			return ca[0]+ca[1] > cb[0]+cb[1]
		}
		return reasons[a] < reasons[b]
	})
	for _, k := range reasons {
		fmt.Fprintf(w, "| %s | %d | %d |\n", k, r.ByReason[k][0], r.ByReason[k][1])
	}
	fmt.Fprintf(w, "\nDynamoDB calls per payment with the DynamoDB store (counted by the in-memory store): %.3f — "+
		"1 counters update, plus %.3f second counter writes (new device, ring slot reuse), %.3f device-item updates (young wallets), "+
		"%.3f balance reads and %.3f receiver updates (transfers between wallets; both in parallel with the update: no added latency).\n",
		r.RoundTrips, r.SecondWrites, r.DeviceLookups, r.BalanceReads, r.ReceiverWrites)
}

func sortedPatterns(m map[string]*Counts) []string {
	var fraudNames, legit []string
	for k := range m {
		if slices.Contains(FraudPatterns, k) || slices.Contains(FraudPatterns2, k) || strings.HasSuffix(k, "_fraud") {
			fraudNames = append(fraudNames, k)
		} else {
			legit = append(legit, k)
		}
	}
	sort.Strings(fraudNames)
	sort.Strings(legit)
	return append(fraudNames, legit...)
}

// currencyOf checks a currency code for the PaySim reader.
func currencyOf(code string) (money.Currency, market.Market, error) {
	c, err := money.ParseCurrency(code)
	if err != nil {
		return "", market.Market{}, err
	}
	m, err := market.ByCurrency(c)
	return c, m, err
}

// Summary is one line of the rules' headline figures.
func (r *Report) Summary() string {
	o := r.Scorers[0]
	t := o.Total
	return fmt.Sprintf("ROC-AUC %.3f, deny precision %.1f%% recall %.1f%%, flagged precision %.1f%% recall %.1f%%, legit flagged %.2f%% (festival %.2f%%)",
		o.AUC, 100*t.DenyPrecision(), 100*t.DenyRecall(), 100*t.Precision(), 100*t.Recall(), 100*t.LegitFlaggedRate(), 100*o.Festival.LegitFlaggedRate())
}

// WriteSummary writes the scorers' headline table of one report.
func (r *Report) WriteSummary(w io.Writer) {
	fmt.Fprintf(w, "| scorer | payments | fraud | ROC-AUC | deny precision | deny recall | flagged precision | flagged recall | legit flagged | legit flagged, festival | money caught |\n")
	fmt.Fprintf(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, o := range r.Scorers {
		t := o.Total
		fmt.Fprintf(w, "| %s | %d | %d | %.3f | %s | %s | %s | %s | %s | %s | %s |\n", o.Name, t.Payments, t.Fraud, o.AUC,
			pct(t.DenyPrecision()), pct(t.DenyRecall()), pct(t.Precision()), pct(t.Recall()), pct2(t.LegitFlaggedRate()),
			pct2(o.Festival.LegitFlaggedRate()), pct(t.AmountRecall()))
	}
	fmt.Fprintln(w)
}
