package chaos

import (
	"context"
	"encoding/base64"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/sebelas/sebelas/internal/audit"
	"github.com/sebelas/sebelas/internal/deadletter"
	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/ledger"
	"github.com/sebelas/sebelas/internal/market"
	"github.com/sebelas/sebelas/internal/money"
	"github.com/sebelas/sebelas/internal/operator"
	"github.com/sebelas/sebelas/internal/table"
	"github.com/sebelas/sebelas/internal/topup"
)

func isPermanent(err error) bool { return fault.IsPermanent(err) }

// Check is one invariant and whether it held.
type Check struct {
	Name   string
	Passed bool
	Detail string
}

// Currency is the money of one currency after the run, in minor units.
type Currency struct {
	Currency  money.Currency
	CashIn    int64 // what the run credited
	Balances  int64 // sum of wallet balances
	Held      int64
	Charged   int64 // succeeded charges
	Refunded  int64 // succeeded refunds
	ToppedUp  int64 // captured top-ups: money that left for the operator
	Conserved bool  // CashIn == Balances + Held + Charged - Refunded + ToppedUp
}

// Report is what a run did and found.
type Report struct {
	Seed           uint64
	Options        Options
	Elapsed        time.Duration
	Phases         []Phase
	Sent           map[string]int   // requests by kind
	Attempts       int              // HTTP requests to the ingress, retries included
	IngressMetrics map[string]int64 // the ingress's own /metrics after the run
	Replays        map[string]int   // answers to verbatim replays
	Faults         map[string]int64
	DBDown         time.Duration
	FunctionsDown  time.Duration // victims down in all, kill to listening again
	Restarts       int
	Charges        map[string]int // final outcome per distinct charge id
	Refunds        map[string]int // final outcome per distinct refund id
	Topups         map[string]int // final outcome per distinct top-up id
	Operator       *operator.SimStats
	DeadLetters    map[string]int // stored dead letters by type, code and reason
	Broker         BrokerFigures
	Money          []Currency
	Audit          *audit.Report
	Checks         []Check
}

// Phase is one step of the run and how long it took.
type Phase struct {
	Name    string
	Elapsed time.Duration
}

// BrokerFigures are the local Broker's counters.
type BrokerFigures struct {
	Received, Replies, Delivered, Retried, DeadLettered int64
}

// Passed reports whether every check held.
func (r *Report) Passed() bool {
	for _, c := range r.Checks {
		if !c.Passed {
			return false
		}
	}
	return len(r.Checks) > 0
}

// failuresShownMax bounds the failures a check lists.
const failuresShownMax = 5

func (r *Report) check(name string, failures []string, detail string) {
	c := Check{Name: name, Passed: len(failures) == 0, Detail: detail}
	if len(failures) > 0 {
		sort.Strings(failures)
		if len(failures) > failuresShownMax {
			failures = append(failures[:failuresShownMax], fmt.Sprintf("and %d more", len(failures)-failuresShownMax))
		}
		c.Detail = strings.Join(failures, "; ")
	}
	r.Checks = append(r.Checks, c)
}

// check reads the table with a client that bypasses the fault proxy and
// holds every invariant against it: the run's own reconciliation from its
// records (what it funded, the charge, refund and review ids it sent, read
// back through the ledger's API: per wallet and per currency), and
// internal/audit's scan of the whole table (conservation with merchant
// balances and top-ups, refunds within charges, settlements).
func (e *env) check(ctx context.Context) (*Report, error) {
	e.dbMu.Lock()
	endpoint := e.db.Endpoint
	e.dbMu.Unlock()
	db, err := table.NewClient(ctx, table.Config{Endpoint: endpoint, Table: tableName, MaxAttempts: 5, TimeoutMs: 10_000})
	if err != nil {
		return nil, err
	}
	l := ledger.New(db, tableName, nil)
	r := &Report{Seed: e.o.Seed, Options: e.o, Sent: e.sent, Replays: e.replays, Faults: e.faults.snapshot(), DBDown: e.dbDown,
		Charges: map[string]int{}, Refunds: map[string]int{}, Topups: map[string]int{}, DeadLetters: map[string]int{}}
	r.FunctionsDown, r.Restarts = e.crash.downtime()
	for _, as := range e.answers {
		for _, a := range as {
			r.Attempts += a.attempts
		}
	}
	for _, n := range e.replays {
		r.Attempts += n
	}
	s := e.st.Router.Stats()
	r.Broker = BrokerFigures{s.Received, s.Replies, s.Delivered, s.Retried, s.DeadLettered}
	if m, err := readMetrics(ctx, e.st.Functions["ingress"]+"/metrics", "sebelas_ingress_requests_total"); err == nil {
		r.IngressMetrics = m
	}

	// Dead letters, as stored by the sink (the run may span a UTC midnight).
	sink := &deadletter.Sink{DB: db, Table: tableName}
	dlBySubject := map[string]deadletter.Letter{}
	dlByID := map[string]deadletter.Letter{}
	var noReason []string
	seenDay := map[string]bool{}
	for _, day := range []time.Time{e.started, time.Now()} {
		if seenDay[day.UTC().Format(time.DateOnly)] {
			continue
		}
		seenDay[day.UTC().Format(time.DateOnly)] = true
		letters, err := sink.List(ctx, day)
		if err != nil {
			return nil, fmt.Errorf("list dead letters: %w", err)
		}
		for _, dl := range letters {
			r.DeadLetters[fmt.Sprintf("%s, code %s: %s", dl.Type, dl.ErrorCode, why(dl.ErrorData))]++
			if dl.ErrorCode == "" {
				noReason = append(noReason, dl.Source+"/"+dl.ID)
			}
			if dl.Subject != "" {
				dlBySubject[dl.Subject] = dl
			}
			dlByID[dl.Source+"|"+dl.ID] = dl
		}
	}
	var sinkErrs []string
	for _, dl := range e.st.Router.DeadLetters() {
		if dl.SinkErr != nil {
			sinkErrs = append(sinkErrs, fmt.Sprintf("%s %s: %v", dl.Event.Type(), dl.Event.ID(), dl.SinkErr))
		}
	}
	r.check("every dead letter stored in the table with a reason", append(sinkErrs, noReason...),
		fmt.Sprintf("%d stored, %d dead-lettered by the Broker (a redelivered dead letter is stored once)", len(dlByID), s.DeadLettered))

	var missingInsider []string
	for _, ev := range e.insiders {
		dl, ok := dlByID[ev.Source()+"|"+ev.ID()]
		if !ok || dl.ErrorCode != "400" {
			missingInsider = append(missingInsider, fmt.Sprintf("%s %s (stored %v, code %q)", ev.Type(), ev.ID(), ok, dl.ErrorCode))
		}
	}
	r.check("events posted straight onto the Broker (malformed, unsigned screened, forged reviews) are dead letters with code 400", missingInsider,
		fmt.Sprintf("%d malformed, %d unsigned screened, %d forged reviews", e.sent[insiderMalformed], e.sent[insiderScreened],
			e.sent[insiderReviewed]+e.sent[insiderTopupReviewed]))

	// Charges: one final outcome each; nothing refused at the door stored.
	spent := map[string]int64{}      // wallet -> succeeded charges
	refundedTo := map[string]int64{} // wallet -> succeeded refunds
	charged := map[money.Currency]int64{}
	refunded := map[money.Currency]int64{}
	var lost, leaked, frozenCharged, overRefunded, notFinal, againstReview []string
	for _, id := range sortedKeys(e.plan.charges) {
		c := e.plan.charges[id]
		rec, found, err := l.GetCharge(ctx, id)
		if err != nil {
			return nil, err
		}
		accepted := false
		for _, a := range e.answers[id] {
			accepted = accepted || a.accepted()
		}
		switch {
		case c.attack != "":
			if found {
				leaked = append(leaked, fmt.Sprintf("%s (%s)", id, c.attack))
			}
			r.Charges["refused: "+c.attack]++
			continue
		case found:
			outcome := rec.Status
			if rec.Reason != "" {
				outcome += ": " + rec.Reason
			}
			if d, ok := e.reviews[id]; ok {
				outcome += " (after review: " + d + ")"
				if d == "reject" && rec.Status == ledger.ChargeSucceeded {
					againstReview = append(againstReview, id)
				}
			}
			r.Charges[outcome]++
			if rec.Status == ledger.ChargeInReview {
				notFinal = append(notFinal, id)
			}
		case accepted:
			if dl, ok := dlBySubject[id]; ok {
				r.Charges[fmt.Sprintf("dead-lettered (%s, code %s)", dl.Type, dl.ErrorCode)]++
			} else {
				lost = append(lost, id)
				r.Charges["LOST"]++
			}
			continue
		default:
			r.Charges["never accepted by the ingress: "+lastAnswer(e.answers[id])]++
			continue
		}
		if rec.Status == ledger.ChargeSucceeded {
			spent[rec.Payer] += rec.Amount
			refundedTo[rec.Payer] += rec.Refunded
			charged[money.Currency(rec.Currency)] += rec.Amount
			refunded[money.Currency(rec.Currency)] += rec.Refunded
			if c.payer.frozen {
				frozenCharged = append(frozenCharged, id)
			}
			if rec.Refunded < 0 || rec.Refunded > rec.Amount {
				overRefunded = append(overRefunded, fmt.Sprintf("%s refunded %d of %d", id, rec.Refunded, rec.Amount))
			}
		}
	}
	r.check("every accepted charge ended in exactly one final outcome (none lost, none left in review)", append(lost, notFinal...),
		"stored as succeeded or declined, or in the dead-letter sink with a reason")
	r.check("nothing refused at the ingress or forged on the Broker is in the table", leaked,
		fmt.Sprintf("%d forged, stale or misdirected charge ids and %d unsigned screened ones checked absent", r.refusedCount(), e.sent[insiderScreened]))
	var accepted []string
	for kind, n := range e.attacks {
		accepted = append(accepted, fmt.Sprintf("%d %s accepted", n, kind))
	}
	r.check("no attack was accepted by the ingress (replays included)", accepted,
		fmt.Sprintf("%d attacks, %d replays", r.refusedCount(), e.sent[attackReplay]))
	r.check("no charge on a frozen wallet succeeded", frozenCharged, "")
	if len(e.reviews) > 0 {
		r.check("no charge the reviewer rejected took money (the forged approvals changed nothing)", againstReview,
			fmt.Sprintf("%d reviews", len(e.reviews)))
	}

	// Refunds: one final outcome each, their sum on the charge.
	byCharge := map[string]int64{}
	var refundsLost []string
	for _, id := range sortedKeys(e.refunds) {
		rp := e.refunds[id]
		rec, found, err := l.GetRefund(ctx, id)
		if err != nil {
			return nil, err
		}
		switch {
		case found:
			outcome := rec.Status
			if rec.Reason != "" {
				outcome += ": " + rec.Reason
			}
			r.Refunds[outcome]++
			if rec.Status == ledger.RefundSucceeded {
				byCharge[rp.chargeID] += rec.Amount
			}
		case rp.accepted:
			if dl, ok := dlBySubject[id]; ok {
				r.Refunds[fmt.Sprintf("dead-lettered (%s, code %s)", dl.Type, dl.ErrorCode)]++
			} else {
				refundsLost = append(refundsLost, id)
				r.Refunds["LOST"]++
			}
		default:
			r.Refunds["never accepted by the ingress: "+lastAnswer(e.answers["refund:"+id])]++
		}
	}
	if len(e.refunds) > 0 {
		r.check("every accepted refund ended in exactly one final outcome (none lost)", refundsLost, "")
		for chargeID, sum := range byCharge {
			rec, _, err := l.GetCharge(ctx, chargeID)
			if err != nil {
				return nil, err
			}
			if rec.Refunded != sum {
				overRefunded = append(overRefunded, fmt.Sprintf("%s: refunds sum to %d, charge says %d", chargeID, sum, rec.Refunded))
			}
		}
		r.check("refunds never exceed their charge and add up on it", overRefunded, "")
	}

	// Top-ups: one final outcome each; captured exactly when the operator
	// delivered.
	toppedUp := map[money.Currency]int64{}
	if len(e.topups) > 0 {
		store := topup.NewStore(db, tableName, l, nil)
		var open, lostTopups, notDelivered, delivFree, rejectedTaken []string
		for _, tp := range e.topups {
			rec, found, err := store.Get(ctx, tp.id)
			if err != nil {
				return nil, err
			}
			if !found {
				if dl, ok := dlBySubject[tp.id]; ok {
					r.Topups[fmt.Sprintf("dead-lettered (%s, code %s)", dl.Type, dl.ErrorCode)]++
				} else {
					lostTopups = append(lostTopups, tp.id)
					r.Topups["LOST"]++
				}
				continue
			}
			outcome := rec.Status
			if rec.Reason != "" {
				outcome += ": " + rec.Reason
			}
			if d, ok := e.reviews[tp.id]; ok {
				outcome += " (after review: " + d + ")"
				if d == "reject" && rec.Status == topup.StatusSucceeded {
					rejectedTaken = append(rejectedTaken, tp.id)
				}
			}
			r.Topups[outcome]++
			delivered := e.st.Operator != nil && e.st.Operator.Delivered(tp.id)
			switch rec.Status {
			case topup.StatusSucceeded:
				spent[rec.Payer] += rec.Amount
				toppedUp[money.Currency(rec.Currency)] += rec.Amount
				if !delivered {
					notDelivered = append(notDelivered, tp.id)
				}
			case topup.StatusFailed:
				if delivered {
					delivFree = append(delivFree, tp.id)
				}
			default:
				open = append(open, tp.id+" "+rec.Status)
			}
		}
		r.check("every top-up ended in exactly one final outcome (none lost, none left held, pending or in review)", append(lostTopups, open...),
			fmt.Sprintf("%d top-ups", len(e.topups)))
		r.check("no payer charged for airtime the operator did not deliver", notDelivered, "")
		r.check("no airtime delivered without the payer charged", delivFree, "")
		if len(rejectedTaken) > 0 || e.sent[insiderTopupReviewed] > 0 {
			r.check("no top-up the reviewer rejected took money (the forged approvals changed nothing)", rejectedTaken, "")
		}
		if e.st.Operator != nil {
			st := e.st.Operator.Stats()
			r.Operator = &st
		}
	}

	// Money, per wallet and per currency.
	var negative, held, walletOff []string
	type sums struct{ cashIn, balances, held int64 }
	per := map[money.Currency]*sums{}
	for _, m := range market.All() {
		per[m.Currency] = &sums{}
	}
	for _, w := range e.plan.wallets {
		b, ok, err := l.GetBalance(ctx, w.id, w.cur)
		if err != nil {
			return nil, err
		}
		if !ok {
			walletOff = append(walletOff, w.id+" has no balance")
			continue
		}
		p := per[w.cur]
		p.cashIn += w.funded
		p.balances += b.Balance
		p.held += b.Held
		if b.Balance < 0 {
			negative = append(negative, fmt.Sprintf("%s %d", w.id, b.Balance))
		}
		if b.Held != 0 {
			held = append(held, fmt.Sprintf("%s holds %d", w.id, b.Held))
		}
		if want := w.funded - spent[w.id] + refundedTo[w.id]; b.Balance+b.Held != want {
			walletOff = append(walletOff, fmt.Sprintf("%s: %d, want funded %d - charged and topped up %d + refunded %d = %d",
				w.id, b.Balance+b.Held, w.funded, spent[w.id], refundedTo[w.id], want))
		}
	}
	var notConserved []string
	for _, m := range market.All() {
		p := per[m.Currency]
		c := Currency{Currency: m.Currency, CashIn: p.cashIn, Balances: p.balances, Held: p.held,
			Charged: charged[m.Currency], Refunded: refunded[m.Currency], ToppedUp: toppedUp[m.Currency]}
		accounted := c.Balances + c.Held + c.Charged - c.Refunded + c.ToppedUp
		c.Conserved = c.CashIn == accounted
		if !c.Conserved {
			notConserved = append(notConserved, fmt.Sprintf("%s off by %d", m.Currency, c.CashIn-accounted))
		}
		r.Money = append(r.Money, c)
	}
	r.check("money conserved to the unit in every currency: cash-in = balances + held + charged - refunded + topped up", notConserved, "")
	r.check("every wallet: balance = funded - its succeeded charges and top-ups + its refunds (nothing applied twice)", walletOff,
		fmt.Sprintf("%d wallets", len(e.plan.wallets)))
	r.check("no negative balance", negative, "")
	r.check("no amount left held", held, "")

	// The audit's scan of the whole table.
	ar, err := audit.Run(ctx, db, tableName, audit.Options{})
	if err != nil {
		return nil, err
	}
	r.Audit = &ar
	var violations []string
	for _, v := range ar.Violations {
		violations = append(violations, v.String())
	}
	r.check("internal/audit over the whole table: conservation, no negative balance, refunds within charges, settlements = their items, held = top-ups in flight",
		violations, fmt.Sprintf("%d items scanned", ar.Items))

	// The ingress counted every request it answered.
	var total int64
	for _, n := range r.IngressMetrics {
		total += n
	}
	var miscounted []string
	if total != int64(r.Attempts) {
		miscounted = append(miscounted, fmt.Sprintf("/metrics counts %d requests, the clients sent %d", total, r.Attempts))
	}
	r.check("the ingress counted every request at /metrics", miscounted, fmt.Sprintf("%d requests", total))
	return r, nil
}

func (r *Report) refusedCount() int {
	n := 0
	for k, v := range r.Sent {
		if strings.HasPrefix(k, "attack:") && k != attackReplay {
			n += v
		}
	}
	return n
}

// whyBytesMax bounds a dead letter's reason in the report.
const whyBytesMax = 90

// why is the failure a dead letter records (knativeerrordata: the base64
// of the failed answer's body, or the dispatch error), short.
func why(errorData string) string {
	b, err := base64.StdEncoding.DecodeString(errorData)
	if err != nil {
		// Knative cuts the base64 at 1024 characters; decode what is whole.
		b, _ = base64.StdEncoding.DecodeString(errorData[:len(errorData)/4*4])
	}
	s := strings.TrimSpace(string(b))
	if len(s) > whyBytesMax {
		s = s[:whyBytesMax] + "..."
	}
	if s == "" {
		return "(no reason recorded)"
	}
	return s
}

func lastAnswer(as []answer) string {
	if len(as) == 0 {
		return "not sent"
	}
	a := as[len(as)-1]
	if a.status == 0 {
		return "no answer"
	}
	return fmt.Sprintf("%d %s", a.status, a.reason)
}
