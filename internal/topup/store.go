package topup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sebelas/sebelas/events"
	tabledef "github.com/sebelas/sebelas/infra/dynamodb"
	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/ledger"
	"github.com/sebelas/sebelas/internal/redact"
	"github.com/sebelas/sebelas/internal/table"
)

// The top-up item, T#<topup_id> / T, and its states:
//
//	           ┌─ review ──(approve)─┐
//	screened ──┤                     ├─► held ──► succeeded
//	           ├─ failed             │      │ └─► failed
//	           └─────────────────────┘      └─► pending ──► succeeded | failed
//
// held: the amount is held on the payer's balance and the operator is being
// called. pending: the operator did not say (timeout, no verdict) or said
// pending; reconcile asks it later. review: fraud wants a person to decide;
// nothing is held. failed without a hold: fraud said no, the wallet could
// not pay, or the operator's breaker was open. The final states are
// succeeded (captured) and failed (released, or never held).
//
// Every transition is one conditional write on the item's status, and
// every one that moves money is ONE TransactWriteItems with the ledger's
// hold, capture or release item (internal/ledger/hold.go, which also says
// how the audit accounts for top-ups).
const (
	StatusReview    = "review"
	StatusHeld      = "held"
	StatusPending   = "pending"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"

	// Kind is the item's kind attribute.
	Kind = "topup"
)

// Key prefixes: part of the stored format.
const (
	topupPrefix      = "T#"
	topupSK          = "T"
	conflictSKPrefix = "X#"
	// inFlightPrefix is the sparse GSI partition of top-ups that are held
	// or pending: only they carry it, and the write that makes a top-up
	// final removes it, so reconcile reads exactly the open top-ups.
	inFlightPrefix = "TP#pending#"
	// outboxPrefix is the GSI partition of top-ups reconcile finished
	// whose outcome event is not published yet.
	outboxPrefix = "TP#outbox#"
	// submittedPrefix is the GSI partition of finished top-ups that were
	// held, so may have reached the aggregator: TS#<UTC date of
	// operator_expires_at>#<shard>, sorted by operator_expires_at. The
	// nightly reconcile against the aggregator's statement reads a day of
	// it (Submitted) instead of scanning the table. A top-up enters it with
	// the write that makes it final (or, through the outbox, when its event
	// is published), so it costs no write of its own: one more GSI write.
	submittedPrefix = "TS#"

	// Shards spreads open top-ups over this many GSI partitions. At the
	// design point, 1,000 top-ups/s, each writes its partition twice (in
	// and out): 2,000 writes/s over 16 shards is 125 per partition, far
	// below DynamoDB's ~1,000 per partition. Reconcile queries all 16.
	Shards = 16
)

// dueLayout is a fixed-width UTC time, so that GSI sort keys compare as
// times.
const dueLayout = "2006-01-02T15:04:05.000Z"

// Record is a top-up as stored.
type Record struct {
	PK      string `dynamodbav:"pk"`
	SK      string `dynamodbav:"sk"`
	Kind    string `dynamodbav:"kind"`
	TopupID string `dynamodbav:"topup_id"`
	Payer   string `dynamodbav:"payer_wallet"`
	// MSISDN is the E.164 number: the operator call needs it on a retry
	// after a crash. Logs and events carry MSISDNMasked only.
	MSISDN       string `dynamodbav:"msisdn"`
	MSISDNMasked string `dynamodbav:"msisdn_masked"`
	Market       string `dynamodbav:"market"`
	Operator     string `dynamodbav:"operator"`
	OperatorName string `dynamodbav:"operator_name"`
	ProductID    string `dynamodbav:"product_id,omitempty"`
	ProductKind  string `dynamodbav:"product_kind"`
	Face         int64  `dynamodbav:"face"`
	Fee          int64  `dynamodbav:"fee"`
	Cashback     int64  `dynamodbav:"cashback"`
	// Amount is the price: what is held, then captured or released.
	Amount       int64  `dynamodbav:"amount"`
	Currency     string `dynamodbav:"currency"`
	Status       string `dynamodbav:"status"`
	Reason       string `dynamodbav:"reason,omitempty"`
	OperatorRef  string `dynamodbav:"operator_ref,omitempty"`
	OperatorCode string `dynamodbav:"operator_code,omitempty"`
	Hash         string `dynamodbav:"payload_hash"`
	CreatedAt    string `dynamodbav:"created_at"`
	UpdatedAt    string `dynamodbav:"updated_at"`
	// OperatorExpiresAt is when the operator must no longer carry the
	// request out. (Not "expires_at": that is the table's TTL attribute.)
	OperatorExpiresAt string `dynamodbav:"operator_expires_at"`
	// DeadlineAt is when reconcile stops waiting and releases the hold.
	DeadlineAt string `dynamodbav:"deadline_at"`
	// Checks counts reconcile's status queries.
	Checks  int64  `dynamodbav:"checks"`
	Version int64  `dynamodbav:"version"`
	GSI1PK  string `dynamodbav:"gsi1pk,omitempty"`
	GSI1SK  string `dynamodbav:"gsi1sk,omitempty"`
}

func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// Created, Updated, OperatorExpires and Deadline are the stored times.
func (r Record) Created() time.Time         { return parseTime(r.CreatedAt) }
func (r Record) Updated() time.Time         { return parseTime(r.UpdatedAt) }
func (r Record) OperatorExpires() time.Time { return parseTime(r.OperatorExpiresAt) }
func (r Record) Deadline() time.Time        { return parseTime(r.DeadlineAt) }

// Final reports whether the top-up has its outcome.
func (r Record) Final() bool { return r.Status == StatusSucceeded || r.Status == StatusFailed }

// Result is the record as the payload of its outcome event: succeeded,
// failed, or pending for a top-up not final yet.
func (r Record) Result() (string, events.TopupResult) {
	res := events.TopupResult{
		TopupID: r.TopupID, PayerWallet: r.Payer, MSISDNMasked: r.MSISDNMasked, Operator: r.OperatorName,
		ProductID: r.ProductID, Amount: r.Amount, Currency: r.Currency, OperatorRef: r.OperatorRef,
		Reason: r.Reason, At: r.Updated(),
	}
	switch r.Status {
	case StatusSucceeded:
		res.Reason = "" // the schema of succeeded has no reason
		return events.TypeTopupSucceeded, res
	case StatusFailed:
		return events.TypeTopupFailed, res
	default:
		return events.TypeTopupPending, res
	}
}

// Hash is the fingerprint of what a top-up asks for: two deliveries with
// the same topup_id and hash are one top-up, the same id with another hash
// a conflict. The number is the normalised one, so "0812…" and "+62812…"
// are the same request; delivery metadata (device, time) is left out, as
// for charges.
func Hash(req events.TopupRequested, e164 string) string {
	h := sha256.New()
	for _, f := range []string{"topup-v1", req.TopupID, req.PayerWallet, e164, req.ProductID,
		strconv.FormatInt(req.Amount, 10), req.Currency} {
		fmt.Fprintf(h, "%d:%s;", len(f), f)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func shardOf(topupID string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(topupID))
	return int(h.Sum32() % Shards)
}

func inFlightKey(shard int) string { return fmt.Sprintf("%s%02d", inFlightPrefix, shard) }
func submittedKey(day string, shard int) string {
	return fmt.Sprintf("%s%s#%02d", submittedPrefix, day, shard)
}

// submittedKeys are rec's entry in the submitted index.
func submittedKeys(rec Record) (pk, sk string) {
	exp := rec.OperatorExpires().UTC()
	return submittedKey(exp.Format(time.DateOnly), shardOf(rec.TopupID)), dueKey(exp, rec.TopupID)
}
func outboxKey(shard int) string { return fmt.Sprintf("%s%02d", outboxPrefix, shard) }
func dueKey(t time.Time, topupID string) string {
	return t.UTC().Format(dueLayout) + "#" + topupID
}

func key(topupID string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: topupPrefix + topupID},
		"sk": &types.AttributeValueMemberS{Value: topupSK},
	}
}

// Store keeps the top-up items; the money goes through the ledger's hold
// items in the same transactions.
type Store struct {
	db     ledger.DB
	table  string
	ledger *ledger.Store
	now    func() time.Time
}

// NewStore returns the store on table; now may be nil (time.Now).
func NewStore(db ledger.DB, tableName string, l *ledger.Store, now func() time.Time) *Store {
	if db == nil || tableName == "" || l == nil {
		panic("topup.NewStore: db, table and ledger are required")
	}
	if now == nil {
		now = time.Now
	}
	return &Store{db: db, table: tableName, ledger: l, now: now}
}

// Ledger returns the ledger the store moves money with.
func (s *Store) Ledger() *ledger.Store { return s.ledger }

func mustBuild(b expression.Builder) expression.Expression {
	e, err := b.Build()
	if err != nil {
		panic(err) // expressions are built from constants and our own values
	}
	return e
}

func (s *Store) put(rec Record) types.TransactWriteItem {
	item, err := attributevalue.MarshalMap(rec)
	if err != nil {
		panic(fmt.Sprintf("marshal topup: %v", err))
	}
	cond := mustBuild(expression.NewBuilder().WithCondition(expression.AttributeNotExists(expression.Name("pk"))))
	return types.TransactWriteItem{Put: &types.Put{
		TableName: aws.String(s.table), Item: item,
		ConditionExpression: cond.Condition(), ExpressionAttributeNames: cond.Names(),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}}
}

// errExists is returned with the stored record when a put found the id
// taken.
var errExists = errors.New("topup exists")

// Begin records a new top-up as held and holds its amount on the payer's
// balance: ONE TransactWriteItems, the put conditional on the id being new
// (the idempotency check) and the hold on the balance covering it. rec
// must be complete with status held. It returns the stored record and:
// errExists if the id was taken (the stored record is the earlier one), or
// nil with a failed record if the wallet could not pay (recorded, nothing
// held).
func (s *Store) Begin(ctx context.Context, rec Record) (Record, error) {
	if rec.Status != StatusHeld {
		panic("topup.Begin: record must be held")
	}
	_, err := s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		TransactItems: []types.TransactWriteItem{s.put(rec), s.ledger.HoldItem(rec.Payer, rec.Currency, rec.Amount)},
	})
	if err == nil {
		return rec, nil
	}
	reasons, ok := table.CancellationReasons(err)
	if !ok || len(reasons) != 2 {
		return Record{}, table.Classify(err)
	}
	if table.ConditionFailedAt(reasons, 0) {
		old, err := s.existing(ctx, rec.TopupID, reasons[0].Item)
		if err != nil {
			return Record{}, err
		}
		return old, errExists
	}
	if !table.ConditionFailedAt(reasons, 1) {
		return Record{}, table.Classify(err)
	}
	why, err := s.ledger.WhyNoHold(ctx, rec.Payer, rec.Currency, reasons[1].Item)
	if err != nil {
		return Record{}, err
	}
	return s.Fail(ctx, rec, why)
}

// Fail records a top-up that fails before any money is held (fraud, a
// wallet that cannot pay, an operator known to be down). It returns
// errExists with the stored record if the id was taken.
func (s *Store) Fail(ctx context.Context, rec Record, reason string) (Record, error) {
	rec.Status, rec.Reason = StatusFailed, reason
	rec.GSI1PK, rec.GSI1SK = "", ""
	return s.create(ctx, rec)
}

// Review records a top-up fraud sent to manual review: nothing is held
// until a person approves it (Approve). errExists as for Fail.
func (s *Store) Review(ctx context.Context, rec Record) (Record, error) {
	rec.Status, rec.Reason = StatusReview, events.ReasonFraudReview
	rec.GSI1PK, rec.GSI1SK = "", ""
	return s.create(ctx, rec)
}

func (s *Store) create(ctx context.Context, rec Record) (Record, error) {
	p := s.put(rec).Put
	_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: p.TableName, Item: p.Item, ConditionExpression: p.ConditionExpression,
		ExpressionAttributeNames: p.ExpressionAttributeNames, ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		return rec, nil
	}
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		old, err := s.existing(ctx, rec.TopupID, ccf.Item)
		if err != nil {
			return Record{}, err
		}
		return old, errExists
	}
	return Record{}, table.Classify(err)
}

// existing decodes the old image a failed condition returned, or reads the
// item when the store returned none.
func (s *Store) existing(ctx context.Context, topupID string, old map[string]types.AttributeValue) (Record, error) {
	if len(old) == 0 {
		rec, ok, err := s.Get(ctx, topupID)
		if err != nil {
			return Record{}, err
		}
		if !ok {
			return Record{}, fault.Transient("topup_vanished", errors.New("topup condition failed but no item"))
		}
		return rec, nil
	}
	var rec Record
	if err := attributevalue.UnmarshalMap(old, &rec); err != nil {
		return Record{}, fault.Transient("corrupt_topup", err)
	}
	return rec, nil
}

// Get reads a top-up with a consistent read.
func (s *Store) Get(ctx context.Context, topupID string) (Record, bool, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.table), Key: key(topupID), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return Record{}, false, table.Classify(err)
	}
	if len(out.Item) == 0 {
		return Record{}, false, nil
	}
	var rec Record
	if err := attributevalue.UnmarshalMap(out.Item, &rec); err != nil {
		return Record{}, false, fault.Transient("corrupt_topup", err)
	}
	return rec, true, nil
}

// moneyRefused is returned when the ledger item of a transition failed its
// condition; old is the balance as it was.
type moneyRefused struct {
	old map[string]types.AttributeValue
}

func (e *moneyRefused) Error() string { return "the balance refused the change" }

// heldMissing turns a refused capture or release into the fault it is: the
// top-up is held but its payer's balance holds less. The ledger and the
// top-ups disagree; never paper over it. Retrying cannot fix it either, but
// a transient fault keeps the event and pages through the error log.
func heldMissing(rec Record, err error) error {
	var mr *moneyRefused
	if errors.As(err, &mr) {
		return fault.Transient("held_amount_missing",
			fmt.Errorf("topup %s: balance of %s holds less than %d %s", rec.TopupID, redact.Wallet(rec.Payer), rec.Amount, rec.Currency))
	}
	return err
}

// errMoved is returned with the current record when a transition found
// the top-up not as it expected: another delivery, or reconcile, changed it
// first.
var errMoved = errors.New("topup moved on")

// transition writes after over before: ONE conditional write (with money,
// a ledger item, in the same TransactWriteItems when not nil) that is a
// compare-and-swap on the item's version, from one of the from statuses.
// Only the fields a transition may change are written, each from after;
// after must equal before in every other field (a programmer error panics).
// So a transition never overwrites a change it did not see, and what it
// returns is exactly what is stored, without a read back. On a lost race it
// returns errMoved with the item as it is now; on a refused ledger item,
// *moneyRefused.
func (s *Store) transition(ctx context.Context, before Record, from []string, after Record, money *types.TransactWriteItem) (Record, error) {
	after.UpdatedAt = formatTime(s.now())
	after.Version = before.Version + 1
	if same := withMutable(before, after); same != after {
		panic(fmt.Sprintf("topup: transition of %s changes an immutable field", before.TopupID))
	}
	statuses := make([]expression.OperandBuilder, 0, len(from))
	for _, f := range from {
		statuses = append(statuses, expression.Value(f))
	}
	status := expression.Name("status").Equal(expression.Value(from[0]))
	if len(from) > 1 {
		status = expression.Name("status").In(statuses[0], statuses[1:]...)
	}
	cond := expression.And(status, expression.Name("version").Equal(expression.Value(before.Version)))
	e := mustBuild(expression.NewBuilder().WithCondition(cond).WithUpdate(mutableUpdate(after)))
	update := &types.Update{
		TableName: aws.String(s.table), Key: key(before.TopupID),
		ConditionExpression: e.Condition(), UpdateExpression: e.Update(),
		ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values(),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	var err error
	if money == nil {
		_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: update.TableName, Key: update.Key, ConditionExpression: update.ConditionExpression,
			UpdateExpression: update.UpdateExpression, ExpressionAttributeNames: update.ExpressionAttributeNames,
			ExpressionAttributeValues:           update.ExpressionAttributeValues,
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		})
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			return s.moved(ctx, before.TopupID, ccf.Item)
		}
	} else {
		_, err = s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
			TransactItems: []types.TransactWriteItem{{Update: update}, *money},
		})
		if reasons, ok := table.CancellationReasons(err); ok && len(reasons) == 2 {
			if table.ConditionFailedAt(reasons, 0) {
				return s.moved(ctx, before.TopupID, reasons[0].Item)
			}
			if table.ConditionFailedAt(reasons, 1) {
				return Record{}, &moneyRefused{old: reasons[1].Item}
			}
		}
	}
	if err != nil {
		return Record{}, table.Classify(err)
	}
	return after, nil
}

// withMutable returns base with the fields a transition may change taken
// from r.
func withMutable(base, r Record) Record {
	base.Status, base.Reason = r.Status, r.Reason
	base.OperatorRef, base.OperatorCode = r.OperatorRef, r.OperatorCode
	base.OperatorExpiresAt, base.DeadlineAt = r.OperatorExpiresAt, r.DeadlineAt
	base.Checks, base.Version, base.UpdatedAt = r.Checks, r.Version, r.UpdatedAt
	base.GSI1PK, base.GSI1SK = r.GSI1PK, r.GSI1SK
	return base
}

// mutableUpdate writes every field a transition may change, as r has it;
// an empty optional string removes its attribute, as omitempty stores it.
func mutableUpdate(r Record) expression.UpdateBuilder {
	upd := expression.Set(expression.Name("status"), expression.Value(r.Status)).
		Set(expression.Name("operator_expires_at"), expression.Value(r.OperatorExpiresAt)).
		Set(expression.Name("deadline_at"), expression.Value(r.DeadlineAt)).
		Set(expression.Name("checks"), expression.Value(r.Checks)).
		Set(expression.Name("version"), expression.Value(r.Version)).
		Set(expression.Name("updated_at"), expression.Value(r.UpdatedAt))
	for _, f := range []struct{ name, value string }{
		{"reason", r.Reason}, {"operator_ref", r.OperatorRef}, {"operator_code", r.OperatorCode},
		{"gsi1pk", r.GSI1PK}, {"gsi1sk", r.GSI1SK},
	} {
		if f.value == "" {
			upd = upd.Remove(expression.Name(f.name))
		} else {
			upd = upd.Set(expression.Name(f.name), expression.Value(f.value))
		}
	}
	return upd
}

func (s *Store) moved(ctx context.Context, topupID string, old map[string]types.AttributeValue) (Record, error) {
	// The old image of a failed condition is the item before our write,
	// which is the item now: nothing was written.
	rec, err := s.existing(ctx, topupID, old)
	if err != nil {
		return Record{}, err
	}
	return rec, errMoved
}

// finished is rec final with status: in the submitted index, or with outbox
// parked in the outbox partition until its event is published.
func (s *Store) finished(rec Record, status string, outbox bool) Record {
	rec.Status = status
	rec.GSI1PK, rec.GSI1SK = submittedKeys(rec)
	if outbox {
		rec.GSI1PK, rec.GSI1SK = outboxKey(shardOf(rec.TopupID)), dueKey(s.now(), rec.TopupID)
	}
	return rec
}

// Capture makes a held or pending top-up succeeded and captures its hold.
func (s *Store) Capture(ctx context.Context, rec Record, operatorRef string, outbox bool) (Record, error) {
	after := s.finished(rec, StatusSucceeded, outbox)
	after.Reason = ""
	if operatorRef != "" {
		after.OperatorRef = operatorRef
	}
	item := s.ledger.CaptureItem(rec.Payer, rec.Currency, rec.Amount)
	got, err := s.transition(ctx, rec, []string{StatusHeld, StatusPending}, after, &item)
	return got, heldMissing(rec, err)
}

// Release makes a held or pending top-up failed and gives its hold back.
func (s *Store) Release(ctx context.Context, rec Record, reason, operatorCode string, outbox bool) (Record, error) {
	after := s.finished(rec, StatusFailed, outbox)
	after.Reason = reason
	if operatorCode != "" {
		after.OperatorCode = operatorCode
	}
	item := s.ledger.ReleaseItem(rec.Payer, rec.Currency, rec.Amount)
	got, err := s.transition(ctx, rec, []string{StatusHeld, StatusPending}, after, &item)
	return got, heldMissing(rec, err)
}

// MarkPending records that the operator gave no final answer: reconcile
// looks again at due.
func (s *Store) MarkPending(ctx context.Context, rec Record, reason string, due time.Time) (Record, error) {
	after := rec
	after.Status, after.Reason, after.GSI1SK = StatusPending, reason, dueKey(due, rec.TopupID)
	return s.transition(ctx, rec, []string{StatusHeld}, after, nil)
}

// Recheck counts a status query that settled nothing and sets when to ask
// again.
func (s *Store) Recheck(ctx context.Context, rec Record, due time.Time) (Record, error) {
	after := rec
	after.Checks++
	after.GSI1SK = dueKey(due, rec.TopupID)
	return s.transition(ctx, rec, []string{StatusHeld, StatusPending}, after, nil)
}

// Approve turns a top-up waiting for review into a held one: the review
// decision and the hold are ONE TransactWriteItems. The operator request's
// expiry and the deadline start now; reconcile may look at it from due. If
// the wallet can no longer pay, the top-up fails with the reason and
// nothing is held.
func (s *Store) Approve(ctx context.Context, rec Record, now, due time.Time, requestTTL, pendingMax time.Duration) (Record, error) {
	after := rec
	after.Status, after.Reason = StatusHeld, ""
	after.OperatorExpiresAt = formatTime(now.Add(requestTTL))
	after.DeadlineAt = formatTime(now.Add(pendingMax))
	after.GSI1PK, after.GSI1SK = inFlightKey(shardOf(rec.TopupID)), dueKey(due, rec.TopupID)
	hold := s.ledger.HoldItem(rec.Payer, rec.Currency, rec.Amount)
	got, err := s.transition(ctx, rec, []string{StatusReview}, after, &hold)
	var mr *moneyRefused
	if errors.As(err, &mr) {
		// The wallet can no longer pay: the top-up fails, nothing moves.
		why, err := s.ledger.WhyNoHold(ctx, rec.Payer, rec.Currency, mr.old)
		if err != nil {
			return Record{}, err
		}
		return s.Decide(ctx, rec, StatusFailed, why)
	}
	return got, err
}

// Decide ends a top-up waiting for review without moving money.
func (s *Store) Decide(ctx context.Context, rec Record, status, reason string) (Record, error) {
	after := rec
	after.Status, after.Reason = status, reason
	return s.transition(ctx, rec, []string{StatusReview}, after, nil)
}

// queryPageMax bounds one GSI query page.
const queryPageMax = 100

// Due returns up to limit open top-ups (held or pending) whose time to be
// looked at has come, from every shard, starting at a shard that rotates
// with the time so that a backlog is worked through fairly.
func (s *Store) Due(ctx context.Context, now time.Time, limit int) ([]Record, error) {
	return s.scan(ctx, inFlightKey, dueKey(now.Add(time.Millisecond), ""), limit, now)
}

// Outbox returns up to limit finished top-ups whose event is not
// published yet.
func (s *Store) Outbox(ctx context.Context, limit int) ([]Record, error) {
	// Everything parked in the outbox is due: the bound is far in the
	// future.
	return s.scan(ctx, outboxKey, "9999", limit, s.now())
}

func (s *Store) scan(ctx context.Context, partition func(int) string, before string, limit int, now time.Time) ([]Record, error) {
	var out []Record
	start := int(now.Unix()/60) % Shards
	for i := 0; i < Shards && len(out) < limit; i++ {
		shard := (start + i) % Shards
		kc := mustBuild(expression.NewBuilder().WithKeyCondition(expression.KeyAnd(
			expression.Key("gsi1pk").Equal(expression.Value(partition(shard))),
			expression.Key("gsi1sk").LessThan(expression.Value(before)),
		)))
		var startKey map[string]types.AttributeValue
		for len(out) < limit {
			page, err := s.db.Query(ctx, &dynamodb.QueryInput{
				TableName: aws.String(s.table), IndexName: aws.String(tabledef.GSI1),
				KeyConditionExpression: kc.KeyCondition(), ExpressionAttributeNames: kc.Names(),
				ExpressionAttributeValues: kc.Values(), ExclusiveStartKey: startKey,
				Limit: aws.Int32(int32(min(queryPageMax, limit-len(out)))),
			})
			if err != nil {
				return nil, table.Classify(err)
			}
			var recs []Record
			if err := attributevalue.UnmarshalListOfMaps(page.Items, &recs); err != nil {
				return nil, fault.Transient("corrupt_topup", err)
			}
			out = append(out, recs...)
			if len(page.LastEvaluatedKey) == 0 {
				break
			}
			startKey = page.LastEvaluatedKey
		}
	}
	return out, nil
}

// Published takes a finished top-up out of the outbox, into the submitted
// index.
func (s *Store) Published(ctx context.Context, rec Record) error {
	pk, sk := submittedKeys(rec)
	e := mustBuild(expression.NewBuilder().
		WithCondition(expression.Name("gsi1pk").Equal(expression.Value(outboxKey(shardOf(rec.TopupID))))).
		WithUpdate(expression.Set(expression.Name("gsi1pk"), expression.Value(pk)).
			Set(expression.Name("gsi1sk"), expression.Value(sk))))
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: key(rec.TopupID),
		ConditionExpression: e.Condition(), UpdateExpression: e.Update(),
		ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values(),
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return nil // already out: another tick published it
	}
	return table.Classify(err)
}

// RecordConflict keeps one item per distinct conflicting request under the
// top-up, counting attempts, so an operator can see who reused the id.
func (s *Store) RecordConflict(ctx context.Context, req events.TopupRequested, hash string) error {
	e := mustBuild(expression.NewBuilder().WithUpdate(expression.
		Add(expression.Name("attempts"), expression.Value(1)).
		Set(expression.Name("kind"), expression.Value("topup_conflict")).
		Set(expression.Name("payer_wallet"), expression.Value(req.PayerWallet)).
		Set(expression.Name("amount"), expression.Value(req.Amount)).
		Set(expression.Name("currency"), expression.Value(req.Currency)).
		Set(expression.Name("last_seen"), expression.Value(formatTime(s.now())))))
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table),
		Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: topupPrefix + req.TopupID},
			"sk": &types.AttributeValueMemberS{Value: conflictSKPrefix + hash},
		},
		UpdateExpression: e.Update(), ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values(),
	})
	return table.Classify(err)
}

// SubmittedStats count the reads of one Submitted call.
type SubmittedStats struct {
	Queries int // query pages read
	Items   int
}

// Submitted calls fn with every finished top-up that was held and whose
// operator request expired (operator_expires_at) in [from, to): every top-up
// the aggregator may have received in [from − RequestTTL, to). The index is
// eventually consistent: a top-up finished a moment ago may be missing (the
// reconcile reads the statement's references it did not see directly).
// A top-up still held or pending is not in it (Due lists those).
func (s *Store) Submitted(ctx context.Context, from, to time.Time, fn func(Record) error) (SubmittedStats, error) {
	var st SubmittedStats
	if !from.Before(to) {
		return st, nil
	}
	lo, hi := from.UTC().Format(dueLayout), to.UTC().Format(dueLayout)
	for day := from.UTC().Truncate(24 * time.Hour); day.Before(to); day = day.Add(24 * time.Hour) {
		for shard := range Shards {
			kc := mustBuild(expression.NewBuilder().WithKeyCondition(expression.KeyAnd(
				expression.Key("gsi1pk").Equal(expression.Value(submittedKey(day.Format(time.DateOnly), shard))),
				expression.Key("gsi1sk").Between(expression.Value(lo), expression.Value(hi)))))
			var start map[string]types.AttributeValue
			for {
				page, err := s.db.Query(ctx, &dynamodb.QueryInput{
					TableName: aws.String(s.table), IndexName: aws.String(tabledef.GSI1),
					KeyConditionExpression: kc.KeyCondition(), ExpressionAttributeNames: kc.Names(),
					ExpressionAttributeValues: kc.Values(), ExclusiveStartKey: start,
				})
				if err != nil {
					return st, table.Classify(err)
				}
				st.Queries++
				var recs []Record
				if err := attributevalue.UnmarshalListOfMaps(page.Items, &recs); err != nil {
					return st, fault.Transient("corrupt_topup", err)
				}
				for _, r := range recs {
					if !r.OperatorExpires().Before(to) {
						continue // BETWEEN includes hi
					}
					st.Items++
					if err := fn(r); err != nil {
						return st, err
					}
				}
				if len(page.LastEvaluatedKey) == 0 {
					break
				}
				start = page.LastEvaluatedKey
			}
		}
	}
	return st, nil
}
