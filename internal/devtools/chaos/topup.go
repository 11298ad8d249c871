package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/money"
	"github.com/sebelas/sebelas/internal/topup"
)

// Top-ups of the workload: the app's topup.requested (not a marketplace
// event: straight onto the Broker, as the app's gateway would put it), for
// numbers of operators in every market, while the operator simulator
// answers late (past the function's timeout), loses answers, answers
// pending, and some operators flap in and out of outage.

// topupTarget is a number the workload tops up and a product of its
// operator in the default catalog (internal/topup/products.yaml).
type topupTarget struct {
	msisdn, operator, product string
	amount                    int64 // an open airtime amount when product is ""
	cur                       money.Currency
}

var topupTargets = []topupTarget{
	{"+6281234567890", "telkomsel", "tsel-pulsa-10k", 0, money.IDR},
	{"0856 1234 5678", "indosat", "im3-pulsa-25k", 0, money.IDR},
	{"0817 1234 5678", "xl", "xl-pulsa-50k", 0, money.IDR},
	{"+639170000456", "globe", "globe-load-100", 0, money.PHP},
	{"+60 12-345 6789", "maxis", "hotlink-reload-30", 0, money.MYR},
	{"081 234 5678", "truemove", "true-topup-100", 0, money.THB},
	{"+8801700000123", "grameenphone", "gp-data-10gb-30d", 0, money.BDT},
	{"0300 1234567", "jazz", "", 1_000, money.PKR},
	{"+91 98765 43210", "airtel", "airtel-299-28d", 0, money.INR},
}

// flappers are the operators the run takes down and up again.
var flappers = []string{"telkomsel", "globe", "airtel"}

type topupPlan struct {
	id     string
	payer  *wallet
	target topupTarget
	ev     cloudevents.Event
}

// topupEvents builds the top-up requests: each to a funded wallet of the
// target's currency, some sent twice (the app retrying).
func (p *plan) topupEvents(o Options) []*topupPlan {
	rng := rand.New(rand.NewPCG(o.Seed, 8))
	var out []*topupPlan
	for i := range o.Topups {
		t := topupTargets[i%len(topupTargets)]
		var payers []*wallet
		for _, w := range p.wallets {
			if w.cur == t.cur && !w.frozen {
				payers = append(payers, w)
			}
		}
		if len(payers) == 0 {
			continue
		}
		tp := &topupPlan{id: fmt.Sprintf("tx-%d-%05d", o.Seed, i), payer: payers[rng.IntN(len(payers))], target: t}
		ev, err := events.NewEvent(events.TypeTopupRequested, "/app/chaos", events.TopupRequested{
			TopupID: tp.id, PayerWallet: tp.payer.id, MSISDN: t.msisdn, ProductID: t.product, Amount: t.amount, Currency: string(t.cur),
			DeviceID: "dev-" + tp.payer.id, RequestedAt: time.Now().UTC().Truncate(time.Second)})
		if err != nil {
			panic(err)
		}
		ev.SetSubject(tp.id)
		tp.ev = ev
		out = append(out, tp)
	}
	return out
}

// sendTopups publishes the top-ups (and the app's resends) onto the Broker.
func (e *env) sendTopups(ctx context.Context) {
	rng := rand.New(rand.NewPCG(e.o.Seed, 9))
	for _, tp := range e.topups {
		e.mu.Lock()
		e.sent["top-up (the app, straight onto the Broker)"]++
		e.mu.Unlock()
		// Signed as the app gateway signs what it lets in.
		_ = retry(ctx, func() error { return e.st.PublishSigned(ctx, tp.ev) })
		if rng.Float64() < e.o.ResendProb {
			again, err := events.NewEvent(events.TypeTopupRequested, "/app/chaos", mustTopup(tp.ev))
			if err != nil {
				panic(err)
			}
			e.mu.Lock()
			e.sent["top-up resent by the app"]++
			e.mu.Unlock()
			_ = retry(ctx, func() error { return e.st.PublishSigned(ctx, again) })
		}
	}
}

func mustTopup(ev cloudevents.Event) events.TopupRequested {
	var req events.TopupRequested
	if err := events.Decode(ev, &req); err != nil {
		panic(err)
	}
	return req
}

// flap takes the flapping operators down and up until ctx ends.
func (e *env) flap(ctx context.Context) {
	if e.st.Operator == nil || e.o.OperatorFlapMs <= 0 {
		return
	}
	down := false
	for sleepCtx(ctx, time.Duration(e.o.OperatorFlapMs)*time.Millisecond) == nil {
		down = !down
		for _, op := range flappers {
			e.st.Operator.SetOutage(op, down)
		}
		if down {
			e.faults.add(FaultOperatorDown)
		}
	}
	for _, op := range flappers {
		e.st.Operator.SetOutage(op, false)
	}
}

// settleTopups fires the reconcile tick until no top-up is held or
// pending, or the budget is spent: a top-up whose handler died is taken up
// by reconcile only after topup.StaleHeldMsDefault.
func (e *env) settleTopups(ctx context.Context, store *topup.Store) error {
	deadline := time.Now().Add(time.Duration(e.o.TopupSettleMs) * time.Millisecond)
	for {
		open := 0
		for _, tp := range e.topups {
			rec, ok, err := store.Get(ctx, tp.id)
			if err != nil {
				return err
			}
			if ok && (rec.Status == topup.StatusHeld || rec.Status == topup.StatusPending) {
				open++
			}
		}
		if open == 0 || time.Now().After(deadline) {
			if open > 0 {
				e.say("%d top-ups still open after %d ms of reconcile ticks", open, e.o.TopupSettleMs)
			}
			return nil
		}
		e.say("%d top-ups held or pending: reconcile tick", open)
		if err := e.st.Router.FirePing(ctx, "topup-reconcile"); err != nil {
			return err
		}
		if err := e.drain(ctx); err != nil {
			return err
		}
		if err := sleepCtx(ctx, time.Duration(topupTickMs)*time.Millisecond); err != nil {
			return err
		}
	}
}

// topupTickMs is the pause between two reconcile ticks of the run (the
// cluster ticks every minute).
const topupTickMs = 2_000
