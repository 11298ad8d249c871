// Package topup is the top-up function: it sells airtime and data for a
// phone, paid from the payer's wallet, through a mobile operator that is
// slow and sometimes does not answer.
//
// It consumes topup.screened (fraud's verdict on the app's topup.requested),
// topup.reviewed (the risk team's decision on a top-up fraud sent to review)
// and the minute topup.reconcile tick, and replies topup.succeeded,
// topup.failed or topup.pending.
//
// For an allowed top-up: the number is checked and its operator found
// (internal/msisdn), the product priced (Catalog), then ONE
// TransactWriteItems records the top-up as held and holds its price on the
// payer's balance. The operator is called with a timeout, our reference
// being the topup_id (the aggregator is idempotent on it):
//
//	succeeded  capture the hold, topup.succeeded with the operator's receipt
//	failed     release the hold, topup.failed
//	no verdict mark it pending (the hold stays), topup.pending
//
// Reconcile asks the operator about pending top-ups, and about held ones
// whose handler died, and finishes them the same way; after PendingMaxMs it
// gives up, releases and fails them. Its outcomes are published to K_SINK
// through an outbox kept in the table, so none is lost with a crash.
//
// Never charged twice: the hold, capture and release each go with a
// conditional change of the top-up's status. Never charged for airtime not
// delivered: only a "succeeded" from the operator captures. A duplicate
// delivery while the first is still calling the operator gets 503 (the
// Broker retries later and then replays the outcome); it never calls the
// operator itself.
package topup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/market"
	"github.com/sebelas/sebelas/internal/money"
	"github.com/sebelas/sebelas/internal/msisdn"
	"github.com/sebelas/sebelas/internal/operator"
	"github.com/sebelas/sebelas/internal/signing"
)

// Source is the CloudEvent source of the top-up function's events.
const Source = events.SourcePrefix + "topup"

// Reasons of topup.failed and topup.pending besides events.Reason*.
const (
	// ReasonOperatorRejected: the operator refused (ported number, barred
	// line, product withdrawn, ...); the operator's code is stored.
	ReasonOperatorRejected = "operator_rejected"
	// ReasonOperatorUnavailable: the operator is down or refuses us for
	// now; its breaker may be open. Nothing was delivered.
	ReasonOperatorUnavailable = "operator_unavailable"
	// ReasonOperatorExpired: the request reached the operator too late.
	ReasonOperatorExpired = "operator_expired"
	// ReasonOperatorNotReceived: after the request's expiry the operator
	// has no record of it: it never arrived and never will.
	ReasonOperatorNotReceived = "operator_not_received"
	// ReasonOperatorTimeout: pending because the call timed out; failed
	// when the operator still had no verdict at the deadline.
	ReasonOperatorTimeout = "operator_timeout"
	// ReasonOperatorPending: the operator took it and has not finished.
	ReasonOperatorPending = "operator_pending"
	// ReasonOperatorNoVerdict: pending because the answer proved nothing
	// (a 5xx, a cut connection).
	ReasonOperatorNoVerdict = "operator_no_verdict"

	// ReasonInFlight is the fault reason (503) of a duplicate delivery
	// while the first is still calling the operator.
	ReasonInFlight = "topup_in_flight"
	// ReasonUnknownTopup is the fault reason (503) of a review decision
	// that arrived before the top-up it decides.
	ReasonUnknownTopup = "unknown_topup"
)

// Timing defaults and bounds (Config).
const (
	// OperatorTimeoutMsDefault bounds one submit. Operators answer in about
	// two seconds; eight covers the slow tail at midnight, and a top-up
	// that needs longer is answered pending and finished by reconcile.
	OperatorTimeoutMsDefault = 8_000
	// StatusTimeoutMsDefault bounds one status query of reconcile.
	StatusTimeoutMsDefault = 3_000
	// RequestTTLMsDefault: the operator must not carry a request out after
	// this (operator.Request.ExpiresAt); it bounds how long an unanswered
	// top-up can remain in doubt when the operator has no record of it.
	RequestTTLMsDefault = 60_000
	// StaleHeldMsDefault: a top-up still held this long after it began has
	// lost its handler (a crash, a cut connection); reconcile takes it.
	StaleHeldMsDefault = 30_000
	// RecheckMsDefault is how soon reconcile asks again about a top-up the
	// operator has no verdict on.
	RecheckMsDefault = 30_000
	// PendingMaxMsDefault: after this, reconcile stops waiting and releases
	// the hold. Fifteen minutes is the longest a payer should see money
	// held for airtime; an operator that delivers later has delivered for
	// free, which is the wallet's loss, never the payer's.
	PendingMaxMsDefault = 15 * 60_000
	// ReconcileBudgetMsDefault: a reconcile tick starts no new status
	// query after this, so it answers the Broker well within its timeout;
	// what is left is due at the next tick.
	ReconcileBudgetMsDefault = 20_000

	timeoutMsMax = 3_600_000
	// storeAfterCallTimeoutMs bounds writing the operator's answer. It is
	// detached from the request's context: once the operator may have
	// acted, its answer is recorded even if the Broker hung up.
	storeAfterCallTimeoutMs = 10_000
	// ReconcileLimitDefault is how many open top-ups one tick looks at
	// when the tick does not say (events.TopupReconcile.Limit, 1..1000).
	ReconcileLimitDefault = 200
	// reconcileWorkers bounds the status queries in flight in one tick.
	reconcileWorkers = 8
	// publishTimeoutMs bounds sending one outcome event to the sink.
	publishTimeoutMs = 5_000
)

// Config is the top-up function's timing.
type Config struct {
	OperatorTimeoutMs int
	StatusTimeoutMs   int
	RequestTTLMs      int
	StaleHeldMs       int
	RecheckMs         int
	PendingMaxMs      int
	ReconcileBudgetMs int
}

// DefaultConfig returns the defaults above.
func DefaultConfig() Config {
	return Config{
		OperatorTimeoutMs: OperatorTimeoutMsDefault, StatusTimeoutMs: StatusTimeoutMsDefault,
		RequestTTLMs: RequestTTLMsDefault, StaleHeldMs: StaleHeldMsDefault, RecheckMs: RecheckMsDefault,
		PendingMaxMs: PendingMaxMsDefault, ReconcileBudgetMs: ReconcileBudgetMsDefault,
	}
}

// Validate checks ranges and the order the design relies on: a submit
// ends before its request expires, a held top-up is not taken from a
// handler still waiting on its submit, and the deadline comes after the
// expiry (so "not found" after expiry is decisive before it).
func (c Config) Validate() error {
	for name, v := range map[string]int{
		"operator timeout": c.OperatorTimeoutMs, "status timeout": c.StatusTimeoutMs, "request TTL": c.RequestTTLMs,
		"stale held": c.StaleHeldMs, "recheck": c.RecheckMs, "pending max": c.PendingMaxMs, "reconcile budget": c.ReconcileBudgetMs,
	} {
		if v < 1 || v > timeoutMsMax {
			return fmt.Errorf("topup: %s %d ms: want 1..%d", name, v, timeoutMsMax)
		}
	}
	if c.RequestTTLMs <= c.OperatorTimeoutMs {
		return fmt.Errorf("topup: request TTL %d ms must exceed the operator timeout %d ms", c.RequestTTLMs, c.OperatorTimeoutMs)
	}
	if c.StaleHeldMs <= c.OperatorTimeoutMs {
		return fmt.Errorf("topup: stale-held %d ms must exceed the operator timeout %d ms", c.StaleHeldMs, c.OperatorTimeoutMs)
	}
	if c.PendingMaxMs <= c.RequestTTLMs {
		return fmt.Errorf("topup: pending max %d ms must exceed the request TTL %d ms", c.PendingMaxMs, c.RequestTTLMs)
	}
	return nil
}

func ms(v int) time.Duration { return time.Duration(v) * time.Millisecond }

// Publisher sends an event to the Broker outside the reply path.
type Publisher interface {
	Publish(ctx context.Context, ev cloudevents.Event) error
}

// Handler serves the top-up function's events.
type Handler struct {
	Store    *Store
	Catalog  *Catalog
	Operator operator.Adapter
	// Breakers, if set, fail a top-up before any hold while its operator's
	// breaker is open (Operator should be guarded by the same breakers).
	Breakers *operator.Breakers
	// Publisher sends reconcile's outcomes; nil records them only.
	Publisher Publisher
	// Verifier checks that screened events come from fraud and reviewed
	// ones from the risk team's review tool; nil refuses them all.
	Verifier *signing.Verifier
	Config   Config
	Log      *slog.Logger
	// Now may be nil (time.Now).
	Now func() time.Time
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Handler) log() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Handle is a function.Handler.
func (h *Handler) Handle(ctx context.Context, ev cloudevents.Event) (*cloudevents.Event, error) {
	ev, err := events.FromTick(ev)
	if err != nil {
		return nil, err
	}
	switch ev.Type() {
	case events.TypeTopupScreened:
		return h.screened(ctx, ev)
	case events.TypeTopupReviewed:
		return h.reviewed(ctx, ev)
	case events.TypeTopupReconcile:
		var rc events.TopupReconcile
		if err := events.Decode(ev, &rc); err != nil {
			return nil, err
		}
		limit := rc.Limit
		if limit == 0 {
			limit = ReconcileLimitDefault
		}
		_, err := h.Reconcile(ctx, limit)
		return nil, err
	default:
		return nil, fault.Permanentf("unexpected_type", "topup does not handle %.64q", ev.Type())
	}
}

func (h *Handler) verify(ev cloudevents.Event) error {
	return h.Verifier.Verify(ev, h.now())
}

func (h *Handler) screened(ctx context.Context, ev cloudevents.Event) (*cloudevents.Event, error) {
	// The signature first: a forged event is refused before it is parsed.
	if err := h.verify(ev); err != nil {
		return nil, err
	}
	var sc events.TopupScreened
	if err := events.Decode(ev, &sc); err != nil {
		return nil, err
	}
	req := sc.Topup
	rec, err := h.newRecord(req)
	if err != nil {
		// A redelivery of a top-up taken before the catalog (or the number
		// metadata) changed still gets its outcome, not a dead letter.
		if stored, ok, gerr := h.Store.Get(ctx, req.TopupID); gerr == nil && ok && stored.Hash == Hash(req, stored.MSISDN) {
			return h.duplicate(ctx, ev, req, stored, stored)
		}
		h.log().Warn("topup refused", "topup_id", req.TopupID, "msisdn", msisdn.MaskRaw(req.MSISDN),
			"currency", req.Currency, "reason", fault.ReasonOf(err))
		return nil, err
	}
	var stored Record
	switch sc.Screening.Decision {
	case events.DecisionAllow:
		if h.Breakers != nil && h.Breakers.Refusing(rec.Operator) {
			// Fail fast: no hold, no call, while the operator is down.
			stored, err = h.Store.Fail(ctx, rec, ReasonOperatorUnavailable)
			break
		}
		stored, err = h.Store.Begin(ctx, rec)
		if err == nil && stored.Status == StatusHeld {
			stored, err = h.call(ctx, stored)
		}
	case events.DecisionDeny:
		stored, err = h.Store.Fail(ctx, rec, events.ReasonFraud)
	case events.DecisionReview:
		stored, err = h.Store.Review(ctx, rec)
	default:
		return nil, fault.Permanentf(events.ReasonInvalidEvent, "unknown decision")
	}
	if errors.Is(err, errExists) {
		return h.duplicate(ctx, ev, req, rec, stored)
	}
	if err != nil {
		return nil, err
	}
	return h.reply(stored, "", false)
}

// newRecord checks the request (number, operator, product) and builds the
// top-up as it will be stored when held. Every error is permanent.
func (h *Handler) newRecord(req events.TopupRequested) (Record, error) {
	m, err := market.ByCurrency(money.Currency(req.Currency))
	if err != nil {
		return Record{}, err
	}
	num, err := msisdn.Parse(req.MSISDN, m.Code)
	if err != nil {
		return Record{}, err
	}
	q, err := h.Catalog.Quote(m.Code, num.Operator.ID, req.ProductID, req.Amount)
	if err != nil {
		return Record{}, err
	}
	now := h.now().UTC()
	return Record{
		PK: topupPrefix + req.TopupID, SK: topupSK, Kind: Kind,
		TopupID: req.TopupID, Payer: req.PayerWallet,
		MSISDN: num.E164, MSISDNMasked: num.Masked(), Market: m.Code,
		Operator: num.Operator.ID, OperatorName: num.Operator.Name,
		ProductID: q.ProductID, ProductKind: q.Kind, Face: q.Face, Fee: q.Fee, Cashback: q.Cashback,
		Amount: q.Price, Currency: req.Currency, Status: StatusHeld, Hash: Hash(req, num.E164),
		CreatedAt: formatTime(now), UpdatedAt: formatTime(now),
		OperatorExpiresAt: formatTime(now.Add(ms(h.Config.RequestTTLMs))),
		DeadlineAt:        formatTime(now.Add(ms(h.Config.PendingMaxMs))),
		Version:           1,
		GSI1PK:            inFlightKey(shardOf(req.TopupID)),
		GSI1SK:            dueKey(now.Add(ms(h.Config.StaleHeldMs)), req.TopupID),
	}, nil
}

func (r Record) request() operator.Request {
	return operator.Request{
		Reference: r.TopupID, MSISDN: r.MSISDN, Operator: r.Operator, Product: r.ProductID,
		Kind: r.ProductKind, FaceValue: r.Face, Currency: r.Currency, ExpiresAt: r.OperatorExpires(),
	}
}

// call submits a held top-up to the operator and records the answer.
func (h *Handler) call(ctx context.Context, rec Record) (Record, error) {
	octx, cancel := context.WithTimeout(ctx, ms(h.Config.OperatorTimeoutMs))
	res := h.Operator.Submit(octx, rec.request())
	cancel()
	wctx, cancelWrite := context.WithTimeout(context.WithoutCancel(ctx), storeAfterCallTimeoutMs*time.Millisecond)
	defer cancelWrite()
	return h.settle(wctx, rec, res, false, false)
}

// resolve asks the operator about an open top-up and records the answer
// (reconcile, and a duplicate that finds its first delivery gone).
func (h *Handler) resolve(ctx context.Context, rec Record, outbox bool) (Record, error) {
	sctx, cancel := context.WithTimeout(ctx, ms(h.Config.StatusTimeoutMs))
	res := h.Operator.Status(sctx, rec.Operator, rec.TopupID)
	cancel()
	return h.settle(ctx, rec, res, outbox, true)
}

// casRetriesMax bounds how often settle applies one answer again to a
// top-up that changed under it but is still open (a reconcile recheck
// racing the first delivery's capture, say).
const casRetriesMax = 3

// settle records what the operator said about an open top-up. A top-up
// another delivery or reconcile made final first is returned as it now is.
func (h *Handler) settle(ctx context.Context, rec Record, res operator.Result, outbox, statusQuery bool) (Record, error) {
	for attempt := 0; ; attempt++ {
		got, err := h.apply(ctx, rec, res, outbox, statusQuery)
		if !errors.Is(err, errMoved) {
			return got, err
		}
		open := got.Status == StatusHeld || got.Status == StatusPending
		if !open || attempt == casRetriesMax {
			if got.Status == StatusFailed && res.Outcome == operator.Succeeded {
				h.log().Error("operator delivered a top-up already released: delivered for free",
					"topup_id", rec.TopupID, "operator", rec.Operator, "operator_ref", res.OperatorRef)
			}
			return got, nil
		}
		rec = got
	}
}

// apply makes the one transition an answer calls for.
func (h *Handler) apply(ctx context.Context, rec Record, res operator.Result, outbox, statusQuery bool) (Record, error) {
	now := h.now()
	switch {
	case res.Outcome == operator.Succeeded:
		return h.Store.Capture(ctx, rec, res.OperatorRef, outbox)
	case res.Outcome == operator.Failed:
		return h.Store.Release(ctx, rec, failReason(res.Code), res.Code, outbox)
	case res.Outcome == operator.NotFound && now.After(rec.OperatorExpires()):
		return h.Store.Release(ctx, rec, ReasonOperatorNotReceived, res.Code, outbox)
	case statusQuery && !now.Before(rec.Deadline()):
		h.log().Warn("topup given up: released with the operator still undecided; if it delivers later, it delivered for free",
			"topup_id", rec.TopupID, "operator", rec.Operator, "answer", res.Outcome.String(), "code", res.Code)
		return h.Store.Release(ctx, rec, ReasonOperatorTimeout, res.Code, outbox)
	}
	due := now.Add(ms(h.Config.RecheckMs))
	if rec.Status == StatusHeld {
		return h.Store.MarkPending(ctx, rec, pendingReason(res), due)
	}
	return h.Store.Recheck(ctx, rec, due)
}

func failReason(code string) string {
	switch code {
	case operator.CodeUnavailable, operator.CodeCircuitOpen, operator.CodeRateLimited, operator.CodeUnauthorized:
		return ReasonOperatorUnavailable
	case operator.CodeExpired:
		return ReasonOperatorExpired
	}
	return ReasonOperatorRejected
}

func pendingReason(res operator.Result) string {
	switch {
	case res.Outcome == operator.Pending:
		return ReasonOperatorPending
	case res.Code == operator.CodeTimeout:
		return ReasonOperatorTimeout
	}
	return ReasonOperatorNoVerdict
}

// duplicate answers a delivery whose topup_id is already stored.
func (h *Handler) duplicate(ctx context.Context, ev cloudevents.Event, req events.TopupRequested, rec, stored Record) (*cloudevents.Event, error) {
	if stored.Hash != rec.Hash {
		if err := h.Store.RecordConflict(ctx, req, rec.Hash); err != nil {
			return nil, err
		}
		h.log().Warn("topup conflict", "topup_id", req.TopupID)
		conflict := rec
		conflict.Status, conflict.Reason, conflict.UpdatedAt = StatusFailed, events.ReasonConflict, formatTime(h.now())
		// A conflict is a new fact about this delivery: its own event id,
		// and its own type, so that no consumer reads it as a state of the
		// stored top-up (whose outcome stays the answer for the id).
		_, res := conflict.Result()
		out, err := events.NewOutcome(events.TypeTopupConflicted, Source, ev.Source()+"|"+ev.ID(), rec.TopupID, res.At, res)
		if err != nil {
			return nil, err
		}
		return &out, nil
	}
	if stored.Status == StatusHeld {
		if h.now().Sub(stored.Created()) < ms(h.Config.StaleHeldMs) {
			// The first delivery is still calling the operator: come back
			// later (the Broker retries with backoff) and never call it a
			// second time.
			return nil, fault.Transient(ReasonInFlight, fmt.Errorf("topup %s is being submitted", req.TopupID))
		}
		// Its handler is gone: ask the operator, as reconcile would.
		got, err := h.resolve(ctx, stored, false)
		if err != nil {
			return nil, err
		}
		if got.Status == StatusHeld {
			return nil, fault.Transient(ReasonInFlight, fmt.Errorf("topup %s: no verdict yet", req.TopupID))
		}
		stored = got
	}
	return h.reply(stored, "", true)
}

// reply builds the outcome event of rec. Its id derives from the top-up
// (or from idBasis when set), so a replay carries the same id and
// consumers that dedupe on source+id see one event.
func (h *Handler) reply(rec Record, idBasis string, replayed bool) (*cloudevents.Event, error) {
	ev, err := h.event(rec, idBasis)
	if err != nil {
		return nil, err
	}
	h.log().Info("topup", "topup_id", rec.TopupID, "outcome", ev.Type(), "status", rec.Status, "reason", rec.Reason,
		"operator", rec.Operator, "msisdn", rec.MSISDNMasked, "amount", rec.Amount, "currency", rec.Currency, "replayed", replayed)
	return &ev, nil
}

func (h *Handler) event(rec Record, idBasis string) (cloudevents.Event, error) {
	typ, res := rec.Result()
	if idBasis == "" {
		idBasis = rec.TopupID
		if typ == events.TypeTopupPending {
			// A top-up can be pending twice for different reasons (review,
			// then the operator): two facts, two ids.
			idBasis += "|" + rec.Reason
		}
	}
	return events.NewOutcome(typ, Source, idBasis, rec.TopupID, res.At, res)
}

// reviewed applies the risk team's decision on a top-up in review. The
// first decision wins; later ones replay its outcome.
func (h *Handler) reviewed(ctx context.Context, ev cloudevents.Event) (*cloudevents.Event, error) {
	// The signature first: a forged event is refused before it is parsed.
	if err := h.verify(ev); err != nil {
		return nil, err
	}
	var rv events.TopupReviewed
	if err := events.Decode(ev, &rv); err != nil {
		return nil, err
	}
	rec, ok, err := h.Store.Get(ctx, rv.TopupID)
	if err != nil {
		return nil, err
	}
	if !ok {
		// Reordered: the decision overtook the top-up. The Broker retries
		// for minutes, then dead-letters it with this reason.
		return nil, fault.Transient(ReasonUnknownTopup, fmt.Errorf("no topup %s yet", rv.TopupID))
	}
	if rec.Status != StatusReview {
		return h.reply(rec, "", true)
	}
	var stored Record
	switch {
	case rv.Decision == events.ReviewReject:
		stored, err = h.Store.Decide(ctx, rec, StatusFailed, events.ReasonFraud)
	case h.Breakers != nil && h.Breakers.Refusing(rec.Operator):
		stored, err = h.Store.Decide(ctx, rec, StatusFailed, ReasonOperatorUnavailable)
	default:
		// The clock of the operator request starts now, not when fraud
		// asked for review.
		now := h.now()
		stored, err = h.Store.Approve(ctx, rec, now, now.Add(ms(h.Config.StaleHeldMs)),
			ms(h.Config.RequestTTLMs), ms(h.Config.PendingMaxMs))
		if err == nil && stored.Status == StatusHeld {
			stored, err = h.call(ctx, stored)
		}
	}
	if errors.Is(err, errMoved) {
		return h.reply(stored, "", true)
	}
	if err != nil {
		return nil, err
	}
	return h.reply(stored, "", false)
}

// ReconcileStats says what one reconcile pass did.
type ReconcileStats struct {
	Looked, Succeeded, Failed, StillOpen, Deferred, Errors int
	Published, PublishErrors                               int
}

// Reconcile looks at up to limit open top-ups that are due, asks the
// operator about each and finishes those it can, then publishes the
// outcomes waiting in the outbox. An error means nothing could be read;
// failures of single top-ups are counted and left to the next tick.
func (h *Handler) Reconcile(ctx context.Context, limit int) (ReconcileStats, error) {
	var st ReconcileStats
	due, err := h.Store.Due(ctx, h.now(), limit)
	if err != nil {
		return st, err
	}
	budgetEnd := time.Now().Add(ms(h.Config.ReconcileBudgetMs))
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, reconcileWorkers)
	outbox := h.Publisher != nil
	for _, rec := range due {
		if time.Now().After(budgetEnd) {
			st.Deferred++
			continue
		}
		st.Looked++
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			got, err := h.resolve(ctx, rec, outbox)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				st.Errors++
				h.log().Warn("reconcile", "topup_id", rec.TopupID, "err", err)
			case got.Status == StatusSucceeded:
				st.Succeeded++
			case got.Status == StatusFailed:
				st.Failed++
			default:
				st.StillOpen++
			}
		}()
	}
	wg.Wait()
	if outbox {
		h.publishOutbox(ctx, limit, &st)
	}
	if st.Looked+st.Deferred+st.Published+st.PublishErrors > 0 {
		h.log().Info("reconcile", "looked", st.Looked, "succeeded", st.Succeeded, "failed", st.Failed,
			"still_open", st.StillOpen, "deferred", st.Deferred, "errors", st.Errors,
			"published", st.Published, "publish_errors", st.PublishErrors)
	}
	return st, nil
}

// publishOutbox sends the outcome events of top-ups reconcile finished and
// takes each out of the outbox once the sink has it. A failure leaves it
// for the next tick: at least once, with the same event id every time.
func (h *Handler) publishOutbox(ctx context.Context, limit int, st *ReconcileStats) {
	recs, err := h.Store.Outbox(ctx, limit)
	if err != nil {
		st.PublishErrors++
		h.log().Warn("reconcile outbox", "err", err)
		return
	}
	for _, rec := range recs {
		ev, err := h.event(rec, "")
		if err == nil {
			pctx, cancel := context.WithTimeout(ctx, publishTimeoutMs*time.Millisecond)
			err = h.Publisher.Publish(pctx, ev)
			cancel()
		}
		if err == nil {
			err = h.Store.Published(ctx, rec)
		}
		if err != nil {
			st.PublishErrors++
			h.log().Warn("reconcile publish", "topup_id", rec.TopupID, "err", err)
			continue
		}
		st.Published++
		h.log().Info("topup", "topup_id", rec.TopupID, "outcome", ev.Type(), "status", rec.Status, "reason", rec.Reason,
			"operator", rec.Operator, "msisdn", rec.MSISDNMasked, "amount", rec.Amount, "currency", rec.Currency, "reconciled", true)
	}
}
