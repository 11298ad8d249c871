package fraudeval

import (
	"context"
	"fmt"
	"io"
	"iter"
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

// Report is the result of one evaluation.
type Report struct {
	Source       string // what was evaluated, for the header
	RulesVersion string
	Rules        int
	Total        Counts
	ByMarket     map[string]*Counts
	ByPattern    map[string]*Counts
	ByReason     map[string][2]int64 // reason -> payments it fired on: fraud, legit
	// RoundTrips is DynamoDB round trips per payment the same traffic would
	// cost with the DynamoDB store (counted by the in-memory store).
	RoundTrips float64
	// The extra calls behind RoundTrips, per payment: planned second
	// counter writes, device-item updates, balance reads (in parallel).
	SecondWrites, DeviceLookups, BalanceReads float64
	ScoreNs                                   float64 // mean scoring time per payment, in-memory store included
	Elapsed                                   time.Duration
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
// and the rules of rs, and counts the outcomes.
func Run(ctx context.Context, source string, txns iter.Seq2[Txn, error], rs *fraud.Ruleset) (*Report, error) {
	store := fraud.NewMemoryStore()
	var balance struct {
		wallet, currency string
		value            int64
	}
	// The scorer asks for the balance of the payment being scored only.
	store.Balance = func(wallet, currency string) (int64, bool) {
		if wallet == balance.wallet && currency == balance.currency {
			return balance.value, true
		}
		return 0, false
	}
	scorer := &fraud.Scorer{Rules: fraud.StaticRules{Rules: rs}, Store: store}
	r := &Report{Source: source, RulesVersion: rs.Version, Rules: rs.Rules(),
		ByMarket: map[string]*Counts{}, ByPattern: map[string]*Counts{}, ByReason: map[string][2]int64{}}
	start := time.Now()
	var i int64
	var warm struct{ trips, n, second, device, balances int64 }
	for txn, err := range txns {
		if err != nil {
			return nil, err
		}
		i++
		t := &txn
		if !t.Warmup && warm.n == 0 {
			// The calls of the warm-up are not the period's.
			warm.trips, warm.n = store.RoundTrips()
			warm.second, warm.device, warm.balances = store.Calls()
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
		if r.ByMarket[f.Market] == nil {
			r.ByMarket[f.Market] = &Counts{}
		}
		r.ByMarket[f.Market].add(*t, v.Decision, usd)
		if r.ByPattern[t.Pattern] == nil {
			r.ByPattern[t.Pattern] = &Counts{}
		}
		r.ByPattern[t.Pattern].add(*t, v.Decision, usd)
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
	trips, n := store.RoundTrips()
	second, device, balances := store.Calls()
	n -= warm.n
	r.RoundTrips = ratio(trips-warm.trips, n)
	r.SecondWrites, r.DeviceLookups, r.BalanceReads = ratio(second-warm.second, n), ratio(device-warm.device, n), ratio(balances-warm.balances, n)
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
	pct := func(x float64) string { return fmt.Sprintf("%.1f%%", 100*x) }
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
		"%.3f balance reads (in parallel with the update: no added latency).\n", r.RoundTrips, r.SecondWrites, r.DeviceLookups, r.BalanceReads)
}

func sortedPatterns(m map[string]*Counts) []string {
	var fraudNames, legit []string
	for k := range m {
		isFraud := false
		for _, p := range FraudPatterns {
			if k == p {
				isFraud = true
			}
		}
		if isFraud {
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
