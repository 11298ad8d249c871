package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/market"
	"github.com/sebelas/sebelas/internal/money"
	"github.com/sebelas/sebelas/internal/table"
)

// Refund statuses as stored.
const (
	RefundSucceeded = "succeeded"
	RefundRejected  = "rejected"
)

// Kinds of the items a refund writes (the kind attribute).
const (
	KindRefund         = "refund"
	KindRefundPending  = "refund_pending"
	KindRefundConflict = "refund_conflict"
)

// Refund reasons beyond the shared ones in events.
const (
	// ReasonMarketplaceMismatch: a marketplace may only refund its own
	// charges.
	ReasonMarketplaceMismatch = "marketplace_mismatch"
	// ReasonChargeNotYetSeen is the transient fault of a refund whose charge
	// is not stored yet (delivery reordered them).
	ReasonChargeNotYetSeen = "charge_not_yet_seen"
	// ReasonRefundContention is the throttled fault of a refund that lost
	// refundAttemptsMax races for its charge in one delivery.
	ReasonRefundContention = "refund_contention"
)

const (
	refundPrefix    = "R#"
	refundSK        = "R"
	refundPendingSK = "P"

	// RefundChargeWaitMs is how long a refund whose charge is not stored is
	// answered 503 (the Broker retries), measured from the first delivery
	// this ledger saw, not from the caller's requested_at (a caller's clock
	// or queue could make that any age). The charge goes through fraud
	// first, so a refund sent right after its charge can overtake it by a
	// few hundred milliseconds, by minutes if fraud is down. Two minutes
	// is under the Triggers' 3 min 25 s of retries (triggers.yaml), so the
	// last retries get the permanent answer with its clear reason
	// (unknown_charge, 400, dead-lettered) rather than a bare 503.
	RefundChargeWaitMs = 120_000

	// refundPendingTTLSeconds: the first-seen record only matters while the
	// Broker still retries; a week later the TTL removes it.
	refundPendingTTLSeconds = 7 * 24 * 3600

	// refundAttemptsMax bounds the optimistic rounds one delivery makes
	// against concurrent refunds of the same charge; each round loses only
	// if another refund of that charge won, so the charge always makes
	// progress. After that the delivery answers 429 and the Broker retries.
	refundAttemptsMax = 16
	// refundBackoffMsMax caps the jittered pause between two rounds, which
	// spreads refunds that collide on one charge.
	refundBackoffMsMax = 64
)

// refundItem is a refund as stored, succeeded or rejected: a rejection is
// stored too so that a redelivery replays it and the refund id stays taken.
// Only succeeded refunds carry the GSI keys: settlement debits them from
// the merchant on the refund's own local day, so a refund of a charge that
// was settled yesterday is taken back in today's settlement.
type refundItem struct {
	PK            string `dynamodbav:"pk"`
	SK            string `dynamodbav:"sk"`
	Kind          string `dynamodbav:"kind"`
	RefundID      string `dynamodbav:"refund_id"`
	ChargeID      string `dynamodbav:"charge_id"`
	Marketplace   string `dynamodbav:"marketplace"`
	MerchantID    string `dynamodbav:"merchant_id,omitempty"`
	Payer         string `dynamodbav:"payer_wallet,omitempty"`
	Amount        int64  `dynamodbav:"amount"`
	Currency      string `dynamodbav:"currency,omitempty"`
	Status        string `dynamodbav:"status"`
	Reason        string `dynamodbav:"reason,omitempty"` // rejection reason code
	Detail        string `dynamodbav:"detail,omitempty"`
	RequestReason string `dynamodbav:"refund_reason"` // the marketplace's text
	RefundedTotal int64  `dynamodbav:"refunded_total"`
	Hash          string `dynamodbav:"payload_hash"`
	CreatedAt     string `dynamodbav:"created_at"`
	LocalDate     string `dynamodbav:"local_date,omitempty"`
	GSI1PK        string `dynamodbav:"gsi1pk,omitempty"`
	GSI1SK        string `dynamodbav:"gsi1sk,omitempty"`
}

func (r refundItem) createdAt() time.Time {
	at, _ := time.Parse(time.RFC3339Nano, r.CreatedAt)
	return at
}

func (r refundItem) outcome() RefundOutcome {
	return RefundOutcome{Status: r.Status, Reason: r.Reason, Detail: r.Detail, Payer: r.Payer,
		Merchant: r.MerchantID, Currency: r.Currency, RefundedTotal: r.RefundedTotal, At: r.createdAt()}
}

// refundPendingItem remembers when a refund was first seen without its
// charge.
type refundPendingItem struct {
	FirstSeen string `dynamodbav:"first_seen"`
}

// RefundOutcome is what happened to a refund, first time or replayed.
type RefundOutcome struct {
	Status string // RefundSucceeded or RefundRejected
	Reason string // rejection reason: events.Reason* or Reason* above
	Detail string
	// Payer, Merchant and Currency are the charge's, when it is known.
	Payer, Merchant, Currency string
	// RefundedTotal is the charge's refunded total right after this refund
	// (succeeded), or as it stood when the refund was rejected.
	RefundedTotal int64
	At            time.Time
	Replayed      bool // a duplicate: the stored outcome of an earlier delivery
	// Conflict is set when the refund id was already used with other
	// content; nothing was applied and the attempt was recorded.
	Conflict bool
}

// Result returns the outcome as the payload of refund.succeeded or
// refund.rejected.
func (o RefundOutcome) Result(req events.RefundRequested) (string, events.RefundResult) {
	r := events.RefundResult{
		RefundID: req.RefundID, ChargeID: req.ChargeID, PayerWallet: o.Payer, MerchantID: o.Merchant,
		Amount: req.Amount, Currency: o.Currency, RefundedTotal: o.RefundedTotal,
		Reason: o.Reason, Detail: o.Detail, At: o.At.UTC(),
	}
	switch {
	case o.Conflict:
		// Not a state of the refund: the stored outcome stays its answer.
		return events.TypeRefundConflicted, r
	case o.Status == RefundSucceeded:
		return events.TypeRefundSucceeded, r
	}
	return events.TypeRefundRejected, r
}

// RefundHash is the fingerprint of what a refund asks for; the same refund
// id with another hash is a conflict. requested_at is delivery metadata and
// left out, as in ChargeHash.
func RefundHash(req events.RefundRequested) string {
	h := sha256.New()
	for _, f := range []string{"v1", req.RefundID, req.ChargeID, req.Marketplace,
		strconv.FormatInt(req.Amount, 10), req.Currency, req.Reason} {
		fmt.Fprintf(h, "%d:%s;", len(f), f)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func refundKey(refundID string) map[string]types.AttributeValue {
	return key(refundPrefix+refundID, refundSK)
}

// Refund gives back part or all of a charge to its payer. The refund record,
// the charge's refunded total and the payer's credit are ONE
// TransactWriteItems:
//
//   - put R#<refund_id> with attribute_not_exists(pk): the idempotency check;
//   - update C#<charge_id> SET refunded = :seen + amount, on the condition
//     status = succeeded AND refunded = :seen, where :seen is the refunded
//     total read before and :seen + amount <= amount of the charge was
//     checked here. DynamoDB conditions cannot add two attributes, but the
//     charge's amount never changes after it is written and refunded only
//     changes through this very condition, so "refunded = :seen" makes
//     "refunded + amount <= charge" hold at commit time exactly. Many
//     refunds of one charge at once each commit against the total the
//     previous one left, and the sum can never pass the charge. It also
//     gives the exact refunded_total to store and replay;
//   - update the payer's balance: balance + amount, if the balance exists
//     and is active (a frozen wallet is neither charged nor credited).
//
// Within one process the refunds of one charge take turns (chargeLocks), so
// a marketplace's burst of refunds for one order does not spend
// transactions on conflicts; across processes they race, and the
// condition decides. Losing the race for the charge (its condition failed
// with a newer total, which ALL_OLD returns) is another round with that
// total, up to refundAttemptsMax rounds. A charge that is not stored yet is a transient
// failure for RefundChargeWaitMs after the refund was first seen, then the
// permanent unknown_charge (dead letter).
func (s *Store) Refund(ctx context.Context, req events.RefundRequested) (RefundOutcome, error) {
	if req.Amount <= 0 || req.Amount > money.AmountMinorMax {
		return RefundOutcome{}, fault.Permanentf("invalid_amount", "refund amount %d out of range", req.Amount)
	}
	unlock, err := s.refunding.lock(ctx, req.ChargeID)
	if err != nil {
		return RefundOutcome{}, table.Classify(err)
	}
	defer unlock()
	now := s.now().UTC()
	c, ok, err := s.getChargeItem(ctx, req.ChargeID)
	if err != nil {
		return RefundOutcome{}, err
	}
	if !ok {
		return RefundOutcome{}, s.awaitCharge(ctx, req, now)
	}
	if reason, detail := refusal(req, c); reason != "" {
		return s.rejectRefund(ctx, req, c, c.Refunded, reason, detail, now)
	}
	m, err := market.ByCurrency(money.Currency(c.Currency))
	if err != nil {
		return RefundOutcome{}, fault.Transient("corrupt_charge", err) // a stored charge always has a market
	}
	// One date for every round, the market's local day when the money moves.
	date := m.LocalDate(now)
	seen := c.Refunded
	for attempt := range refundAttemptsMax {
		if req.Amount > c.Amount-seen {
			return s.rejectRefund(ctx, req, c, seen, events.ReasonRefundExceedsCharge,
				fmt.Sprintf("charge %s %d, already refunded %d", c.Currency, c.Amount, seen), now)
		}
		out, next, err := s.commitRefund(ctx, req, c, m.Code, seen, date, now)
		if err != nil || next == nil {
			return out, err
		}
		seen = *next
		if err := pause(ctx, attempt); err != nil {
			return RefundOutcome{}, table.Classify(err)
		}
	}
	return RefundOutcome{}, fault.Throttled(ReasonRefundContention,
		fmt.Errorf("refund %s lost %d rounds against other refunds of charge %s", req.RefundID, refundAttemptsMax, req.ChargeID))
}

// refusal is the rule check that needs only the charge as read: a reason
// code and a detail, or "" when the refund may go on to the money check.
func refusal(req events.RefundRequested, c chargeItem) (string, string) {
	switch {
	case c.Status != ChargeSucceeded:
		return events.ReasonChargeNotRefundable, "charge was " + c.Status
	case req.Marketplace != c.Marketplace:
		return ReasonMarketplaceMismatch, "charge belongs to another marketplace"
	case req.Currency != "" && req.Currency != c.Currency:
		return events.ReasonCurrencyMismatch, "charge is in " + c.Currency
	}
	return "", ""
}

// pause waits a jittered, growing moment between two rounds.
func pause(ctx context.Context, attempt int) error {
	ms := min(1<<min(attempt, 6), refundBackoffMsMax)
	t := time.NewTimer(time.Duration(rand.IntN(ms)+1) * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// commitRefund makes one round of the refund transaction. It returns the
// outcome, or next != nil with the charge's refunded total to try again
// with.
func (s *Store) commitRefund(ctx context.Context, req events.RefundRequested, c chargeItem, marketCode string, seen int64, date string, now time.Time) (RefundOutcome, *int64, error) {
	total := seen + req.Amount
	it := refundItem{
		PK: refundPrefix + req.RefundID, SK: refundSK, Kind: KindRefund,
		RefundID: req.RefundID, ChargeID: req.ChargeID, Marketplace: req.Marketplace,
		MerchantID: c.MerchantID, Payer: c.Payer, Amount: req.Amount, Currency: c.Currency,
		Status: RefundSucceeded, RequestReason: req.Reason, RefundedTotal: total,
		Hash: RefundHash(req), CreatedAt: now.Format(time.RFC3339Nano), LocalDate: date,
		GSI1PK: UnsettledPK(marketCode, unitShard(req.RefundID)),
		GSI1SK: unsettledSK(date, c.MerchantID, UnitRefund, req.RefundID),
	}
	item, err := attributevalue.MarshalMap(it)
	if err != nil {
		panic(fmt.Sprintf("marshal refund item: %v", err))
	}
	putCond, err := expression.NewBuilder().
		WithCondition(expression.AttributeNotExists(expression.Name("pk"))).Build()
	if err != nil {
		panic(err)
	}
	onCharge, err := expression.NewBuilder().
		WithCondition(expression.And(
			expression.Name("status").Equal(expression.Value(ChargeSucceeded)),
			expression.Name("refunded").Equal(expression.Value(seen)),
		)).
		WithUpdate(expression.Set(expression.Name("refunded"), expression.Value(total))).
		Build()
	if err != nil {
		panic(err)
	}
	credit, err := expression.NewBuilder().
		WithCondition(expression.And(
			expression.AttributeExists(expression.Name("pk")),
			expression.Name("status").Equal(expression.Value(WalletActive)),
		)).
		WithUpdate(expression.
			Set(expression.Name("balance"), expression.Name("balance").Plus(expression.Value(req.Amount))).
			Set(expression.Name("version"), expression.Name("version").Plus(expression.Value(1))).
			Set(expression.Name("updated_at"), expression.Value(it.CreatedAt))).
		Build()
	if err != nil {
		panic(err)
	}
	_, err = s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		TransactItems: []types.TransactWriteItem{
			{Put: &types.Put{
				TableName: aws.String(s.table), Item: item,
				ConditionExpression: putCond.Condition(), ExpressionAttributeNames: putCond.Names(),
				ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
			}},
			{Update: &types.Update{
				TableName: aws.String(s.table), Key: chargeKey(req.ChargeID),
				ConditionExpression: onCharge.Condition(), UpdateExpression: onCharge.Update(),
				ExpressionAttributeNames: onCharge.Names(), ExpressionAttributeValues: onCharge.Values(),
				ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
			}},
			{Update: &types.Update{
				TableName: aws.String(s.table), Key: balanceKey(c.Payer, c.Currency),
				ConditionExpression: credit.Condition(), UpdateExpression: credit.Update(),
				ExpressionAttributeNames: credit.Names(), ExpressionAttributeValues: credit.Values(),
				ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
			}},
		},
	})
	if err == nil {
		return RefundOutcome{Status: RefundSucceeded, Payer: c.Payer, Merchant: c.MerchantID,
			Currency: c.Currency, RefundedTotal: total, At: it.createdAt()}, nil, nil
	}
	reasons, ok := table.CancellationReasons(err)
	if !ok || len(reasons) != 3 {
		if fault.ReasonOf(table.Classify(err)) == table.ReasonConflict {
			// A transaction conflict the client's own retries did not
			// outlast: read the charge again and make another round.
			return s.refreshSeen(ctx, req)
		}
		return RefundOutcome{}, nil, table.Classify(err)
	}
	switch {
	case table.ConditionFailedAt(reasons, 0):
		out, err := s.replayRefund(ctx, req, reasons[0].Item)
		return out, nil, err
	case table.ConditionFailedAt(reasons, 1):
		old := reasons[1].Item
		if len(old) == 0 {
			return s.refreshSeen(ctx, req)
		}
		var latest chargeItem
		if err := attributevalue.UnmarshalMap(old, &latest); err != nil {
			return RefundOutcome{}, nil, fault.Transient("corrupt_charge", err)
		}
		if latest.Status != ChargeSucceeded {
			return RefundOutcome{}, nil, fault.Transient("corrupt_charge", errors.New("charge status changed"))
		}
		return RefundOutcome{}, &latest.Refunded, nil
	case table.ConditionFailedAt(reasons, 2):
		reason := events.ReasonWalletFrozen
		if len(reasons[2].Item) == 0 {
			reason = events.ReasonWalletNotFound
		}
		out, err := s.rejectRefund(ctx, req, c, seen, reason, "payer wallet cannot be credited", now)
		return out, nil, err
	case table.CanceledRetryable(reasons):
		return s.refreshSeen(ctx, req)
	}
	return RefundOutcome{}, nil, table.Classify(err)
}

// refreshSeen reads the charge's refunded total for another round.
func (s *Store) refreshSeen(ctx context.Context, req events.RefundRequested) (RefundOutcome, *int64, error) {
	c, ok, err := s.getChargeItem(ctx, req.ChargeID)
	if err != nil {
		return RefundOutcome{}, nil, err
	}
	if !ok {
		return RefundOutcome{}, nil, fault.Transient("charge_vanished", errors.New("charge read before but not now"))
	}
	return RefundOutcome{}, &c.Refunded, nil
}

// rejectRefund records a refused refund without moving money. If the
// refund id is already stored, its outcome is replayed (or a conflict
// recorded) instead.
func (s *Store) rejectRefund(ctx context.Context, req events.RefundRequested, c chargeItem, refunded int64, reason, detail string, now time.Time) (RefundOutcome, error) {
	it := refundItem{
		PK: refundPrefix + req.RefundID, SK: refundSK, Kind: KindRefund,
		RefundID: req.RefundID, ChargeID: req.ChargeID, Marketplace: req.Marketplace,
		MerchantID: c.MerchantID, Payer: c.Payer, Amount: req.Amount, Currency: c.Currency,
		Status: RefundRejected, Reason: reason, Detail: detail, RequestReason: req.Reason,
		RefundedTotal: refunded, Hash: RefundHash(req), CreatedAt: now.Format(time.RFC3339Nano),
	}
	if reason == events.ReasonCurrencyMismatch {
		// The amount was asked in the request's currency; say so.
		it.Currency = req.Currency
	}
	item, err := attributevalue.MarshalMap(it)
	if err != nil {
		panic(fmt.Sprintf("marshal refund item: %v", err))
	}
	cond, err := expression.NewBuilder().
		WithCondition(expression.AttributeNotExists(expression.Name("pk"))).Build()
	if err != nil {
		panic(err)
	}
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.table), Item: item,
		ConditionExpression: cond.Condition(), ExpressionAttributeNames: cond.Names(),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		return it.outcome(), nil
	}
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return s.replayRefund(ctx, req, ccf.Item)
	}
	return RefundOutcome{}, table.Classify(err)
}

// replayRefund answers a delivery whose refund id is already stored: the
// stored outcome if the content matches, a recorded conflict if not.
func (s *Store) replayRefund(ctx context.Context, req events.RefundRequested, old map[string]types.AttributeValue) (RefundOutcome, error) {
	r, err := storedImage[refundItem](ctx, s, refundKey(req.RefundID), old, "refund")
	if err != nil {
		return RefundOutcome{}, err
	}
	if r.Hash != RefundHash(req) {
		if err := s.recordRefundConflict(ctx, req); err != nil {
			return RefundOutcome{}, err
		}
		return RefundOutcome{Status: RefundRejected, Reason: events.ReasonConflict,
			Detail: "refund_id already used with other content", Payer: r.Payer, Merchant: r.MerchantID,
			Currency: r.Currency, RefundedTotal: r.RefundedTotal, At: s.now().UTC(), Conflict: true}, nil
	}
	out := r.outcome()
	out.Replayed = true
	return out, nil
}

// recordRefundConflict keeps one item per distinct conflicting payload
// under the refund, counting attempts.
func (s *Store) recordRefundConflict(ctx context.Context, req events.RefundRequested) error {
	upd, err := expression.NewBuilder().WithUpdate(expression.
		Add(expression.Name("attempts"), expression.Value(1)).
		Set(expression.Name("kind"), expression.Value(KindRefundConflict)).
		Set(expression.Name("charge_id"), expression.Value(req.ChargeID)).
		Set(expression.Name("marketplace"), expression.Value(req.Marketplace)).
		Set(expression.Name("amount"), expression.Value(req.Amount)).
		Set(expression.Name("last_seen"), expression.Value(s.now().UTC().Format(time.RFC3339Nano)))).
		Build()
	if err != nil {
		panic(err)
	}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       key(refundPrefix+req.RefundID, conflictSKPrefix+RefundHash(req)),
		UpdateExpression:          upd.Update(),
		ExpressionAttributeNames:  upd.Names(),
		ExpressionAttributeValues: upd.Values(),
	})
	return table.Classify(err)
}

// awaitCharge answers a refund whose charge is not stored: transient while
// the charge may still arrive, permanent once RefundChargeWaitMs have passed
// since the refund was first seen. The first-seen time is stored (once, by
// if_not_exists) because deliveries of one event may reach different pods.
func (s *Store) awaitCharge(ctx context.Context, req events.RefundRequested, now time.Time) error {
	upd, err := expression.NewBuilder().WithUpdate(expression.
		Set(expression.Name("first_seen"), expression.Name("first_seen").IfNotExists(expression.Value(now.Format(time.RFC3339Nano)))).
		Set(expression.Name("kind"), expression.Value(KindRefundPending)).
		Set(expression.Name("charge_id"), expression.Value(req.ChargeID)).
		Set(expression.Name("expires_at"), expression.Name("expires_at").IfNotExists(expression.Value(now.Unix()+refundPendingTTLSeconds)))).
		Build()
	if err != nil {
		panic(err)
	}
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: key(refundPrefix+req.RefundID, refundPendingSK),
		UpdateExpression: upd.Update(), ExpressionAttributeNames: upd.Names(),
		ExpressionAttributeValues: upd.Values(), ReturnValues: types.ReturnValueAllNew,
	})
	if err != nil {
		return table.Classify(err)
	}
	var p refundPendingItem
	if err := attributevalue.UnmarshalMap(out.Attributes, &p); err != nil {
		return fault.Transient("corrupt_refund", err)
	}
	first, err := time.Parse(time.RFC3339Nano, p.FirstSeen)
	if err != nil {
		return fault.Transient("corrupt_refund", err)
	}
	waited := now.Sub(first)
	if waited < RefundChargeWaitMs*time.Millisecond {
		return fault.Transient(ReasonChargeNotYetSeen,
			fmt.Errorf("charge %s is not stored yet (waited %s of %s)", req.ChargeID, waited.Round(time.Millisecond), RefundChargeWaitMs*time.Millisecond))
	}
	return fault.Permanentf(events.ReasonUnknownCharge,
		"charge %s still unknown %s after refund %s was first seen", req.ChargeID, waited.Round(time.Second), req.RefundID)
}

// getChargeItem reads a charge as stored, with a consistent read.
func (s *Store) getChargeItem(ctx context.Context, chargeID string) (chargeItem, bool, error) {
	return getItem[chargeItem](ctx, s, chargeKey(chargeID), "corrupt_charge")
}

// RefundRecord is a stored refund as read back.
type RefundRecord struct {
	RefundID, ChargeID, MerchantID, Payer, Currency, Status, Reason, LocalDate string
	Amount, RefundedTotal                                                      int64
	CreatedAt                                                                  time.Time
}

// GetRefund reads a refund with a consistent read; ok is false if absent.
func (s *Store) GetRefund(ctx context.Context, refundID string) (RefundRecord, bool, error) {
	r, ok, err := getItem[refundItem](ctx, s, refundKey(refundID), "corrupt_refund")
	if err != nil || !ok {
		return RefundRecord{}, ok, err
	}
	return RefundRecord{RefundID: r.RefundID, ChargeID: r.ChargeID, MerchantID: r.MerchantID, Payer: r.Payer,
		Currency: r.Currency, Status: r.Status, Reason: r.Reason, LocalDate: r.LocalDate,
		Amount: r.Amount, RefundedTotal: r.RefundedTotal, CreatedAt: r.createdAt()}, true, nil
}

// chargeLocks lets the refunds of one charge take turns within a process;
// the zero value is ready. An entry lives while someone holds or waits for
// it, so memory is bounded by the refunds in flight.
type chargeLocks struct {
	mu    sync.Mutex
	turns map[string]*chargeTurn
}

type chargeTurn struct {
	token   chan struct{} // holds one token while the charge is free
	waiters int           // holders and waiters, under chargeLocks.mu
}

// lock waits for chargeID's turn, or for ctx to end, and returns the
// function that ends the turn.
func (l *chargeLocks) lock(ctx context.Context, chargeID string) (func(), error) {
	l.mu.Lock()
	if l.turns == nil {
		l.turns = map[string]*chargeTurn{}
	}
	t := l.turns[chargeID]
	if t == nil {
		t = &chargeTurn{token: make(chan struct{}, 1)}
		t.token <- struct{}{}
		l.turns[chargeID] = t
	}
	t.waiters++
	l.mu.Unlock()
	leave := func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if t.waiters--; t.waiters == 0 {
			delete(l.turns, chargeID)
		}
	}
	select {
	case <-t.token:
		return func() { t.token <- struct{}{}; leave() }, nil
	case <-ctx.Done():
		leave()
		return nil, ctx.Err()
	}
}
