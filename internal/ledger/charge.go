package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
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

// Charge statuses as stored.
const (
	ChargeSucceeded = "succeeded"
	ChargeDeclined  = "declined"
)

// chargeItem is a charge as stored. A declined charge is stored too, so that
// a redelivery replays the decline instead of charging once funds arrive.
type chargeItem struct {
	PK          string `dynamodbav:"pk"`
	SK          string `dynamodbav:"sk"`
	Kind        string `dynamodbav:"kind"`
	ChargeID    string `dynamodbav:"charge_id"`
	Marketplace string `dynamodbav:"marketplace"`
	MerchantID  string `dynamodbav:"merchant_id"`
	Payer       string `dynamodbav:"payer_wallet"`
	Amount      int64  `dynamodbav:"amount"`
	Currency    string `dynamodbav:"currency"`
	Status      string `dynamodbav:"status"`
	Reason      string `dynamodbav:"reason,omitempty"`
	Detail      string `dynamodbav:"detail,omitempty"`
	Refunded    int64  `dynamodbav:"refunded"`
	Hash        string `dynamodbav:"payload_hash"`
	CreatedAt   string `dynamodbav:"created_at"`
	LocalDate   string `dynamodbav:"local_date,omitempty"`
	// Only succeeded charges carry the GSI keys, and only until they are
	// settled (unsettled.go): declines are never settled, and not indexing
	// them saves a GSI write.
	GSI1PK string `dynamodbav:"gsi1pk,omitempty"`
	GSI1SK string `dynamodbav:"gsi1sk,omitempty"`
}

func (c chargeItem) createdAt() time.Time {
	at, _ := time.Parse(time.RFC3339Nano, c.CreatedAt)
	return at
}

// ChargeOutcome is what happened to a charge, first time or replayed.
type ChargeOutcome struct {
	Status   string // ChargeSucceeded or ChargeDeclined
	Reason   string // decline reason, events.Reason*
	Detail   string
	At       time.Time
	Replayed bool // a duplicate: the stored outcome of an earlier delivery
	// Conflict is set when the charge id was already used with other
	// content; nothing was applied and the attempt was recorded.
	Conflict bool
}

// Result returns the outcome as the payload of charge.succeeded or
// charge.declined.
func (o ChargeOutcome) Result(req events.ChargeRequested) (string, events.ChargeResult) {
	r := events.ChargeResult{
		ChargeID: req.ChargeID, MerchantID: req.MerchantID, PayerWallet: req.PayerWallet,
		Amount: req.Amount, Currency: req.Currency, Reason: o.Reason, Detail: o.Detail, At: o.At.UTC(),
	}
	switch {
	case o.Conflict:
		// Not a state of the charge: the stored outcome stays its answer.
		return events.TypeChargeConflicted, r
	case o.Status == ChargeSucceeded:
		return events.TypeChargeSucceeded, r
	}
	return events.TypeChargeDeclined, r
}

// ChargeHash is the fingerprint of what a charge asks for. Two deliveries
// with the same charge_id and hash are one charge; the same id with another
// hash is a conflict. Delivery metadata (time, device) is left out on
// purpose: a marketplace retrying from another server is the same charge.
func ChargeHash(req events.ChargeRequested) string {
	h := sha256.New()
	for _, f := range []string{"v1", req.ChargeID, req.Marketplace, req.MerchantID, req.PayerWallet,
		strconv.FormatInt(req.Amount, 10), req.Currency, req.Description} {
		// Length-prefixed so that field boundaries cannot be shifted.
		fmt.Fprintf(h, "%d:%s;", len(f), f)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (s *Store) newChargeItem(req events.ChargeRequested, status, reason, detail string) (chargeItem, error) {
	now := s.now().UTC()
	it := chargeItem{
		PK: chargePrefix + req.ChargeID, SK: chargeSK, Kind: "charge",
		ChargeID: req.ChargeID, Marketplace: req.Marketplace, MerchantID: req.MerchantID,
		Payer: req.PayerWallet, Amount: req.Amount, Currency: req.Currency,
		Status: status, Reason: reason, Detail: detail,
		Hash: ChargeHash(req), CreatedAt: now.Format(time.RFC3339Nano),
	}
	if status == ChargeSucceeded {
		m, err := market.ByCurrency(money.Currency(req.Currency))
		if err != nil {
			return it, fault.Permanent("unknown_currency", err)
		}
		// The merchant's day is the market's local day at the moment the
		// money moved, so settlement after local midnight sees it.
		it.LocalDate = m.LocalDate(now)
		it.GSI1PK = UnsettledPK(m.Code, unitShard(req.ChargeID))
		it.GSI1SK = unsettledSK(it.LocalDate, req.MerchantID, UnitCharge, req.ChargeID)
	}
	return it, nil
}

// Charge debits the payer for an allowed charge: ONE TransactWriteItems of
// two items and no read. The put of the charge with attribute_not_exists(pk)
// is the idempotency check; the update of the payer's balance carries the
// funds and status checks. A failed condition is told apart from the
// cancellation reasons; only the decline path costs a second round trip.
func (s *Store) Charge(ctx context.Context, req events.ChargeRequested, limits money.Limits) (ChargeOutcome, error) {
	amt, err := money.New(req.Amount, money.Currency(req.Currency))
	if err != nil {
		return ChargeOutcome{}, fault.Permanent("invalid_amount", err)
	}
	if err := limits.Check(amt); err != nil {
		return s.Decline(ctx, req, events.ReasonAmountLimit, "above the per-charge maximum")
	}
	it, err := s.newChargeItem(req, ChargeSucceeded, "", "")
	if err != nil {
		return ChargeOutcome{}, err
	}
	item, err := attributevalue.MarshalMap(it)
	if err != nil {
		panic(fmt.Sprintf("marshal charge item: %v", err)) // a struct we own always marshals
	}
	putCond, err := expression.NewBuilder().
		WithCondition(expression.AttributeNotExists(expression.Name("pk"))).Build()
	if err != nil {
		panic(err)
	}
	_, err = s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		ReturnConsumedCapacity: types.ReturnConsumedCapacityIndexes,
		TransactItems: []types.TransactWriteItem{
			{Put: &types.Put{
				TableName:                           aws.String(s.table),
				Item:                                item,
				ConditionExpression:                 putCond.Condition(),
				ExpressionAttributeNames:            putCond.Names(),
				ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
			}},
			s.debitItem(req, it.CreatedAt),
		},
	})
	if err == nil {
		return ChargeOutcome{Status: ChargeSucceeded, At: it.createdAt()}, nil
	}
	reasons, ok := table.CancellationReasons(err)
	if !ok || len(reasons) != 2 {
		return ChargeOutcome{}, table.Classify(err)
	}
	if table.ConditionFailedAt(reasons, 0) {
		// The charge exists: a duplicate delivery or a conflicting reuse.
		return s.replayCharge(ctx, req, reasons[0].Item)
	}
	if !table.ConditionFailedAt(reasons, 1) {
		// Throttling, a conflicting concurrent transaction, or similar.
		return ChargeOutcome{}, table.Classify(err)
	}
	reason, detail, err := s.whyNoDebit(ctx, req, reasons[1].Item)
	if err != nil {
		return ChargeOutcome{}, err
	}
	return s.Decline(ctx, req, reason, detail)
}

// debitItem takes a charge's amount from the payer's balance inside a
// transaction, under the same condition as a hold (spendable). The old image
// comes back on failure so whyNoDebit can say why. Charge and an approved
// review share it, so both debit under the same rules.
func (s *Store) debitItem(req events.ChargeRequested, at string) types.TransactWriteItem {
	debit, err := expression.NewBuilder().
		WithCondition(spendable(req.Amount)).
		WithUpdate(expression.
			Set(expression.Name("balance"), expression.Name("balance").Minus(expression.Value(req.Amount))).
			Set(expression.Name("version"), expression.Name("version").Plus(expression.Value(1))).
			Set(expression.Name("updated_at"), expression.Value(at))).
		Build()
	if err != nil {
		panic(err) // built from constants and an int64: cannot fail
	}
	return s.balanceUpdate(req.PayerWallet, req.Currency, debit)
}

// spendable is the condition for taking amount from a balance: it exists,
// is active and covers amount. Charges and holds both spend under it.
func spendable(amount int64) expression.ConditionBuilder {
	return expression.And(
		expression.AttributeExists(expression.Name("pk")),
		expression.Name("status").Equal(expression.Value(WalletActive)),
		expression.Name("balance").GreaterThanEqual(expression.Value(amount)),
	)
}

// whyNoDebit tells insufficient funds, frozen, unknown wallet and currency
// mismatch apart from the old image of the balance item.
func (s *Store) whyNoDebit(ctx context.Context, req events.ChargeRequested, old map[string]types.AttributeValue) (string, string, error) {
	if len(old) == 0 {
		// DynamoDB returns no old image when the item does not exist. Tell
		// "no wallet" from "no balance in this currency" with one query,
		// on the decline path only.
		others, err := s.Balances(ctx, req.PayerWallet)
		if err != nil {
			return "", "", err
		}
		if len(others) > 0 {
			return events.ReasonCurrencyMismatch, "payer has no " + req.Currency + " balance", nil
		}
		return events.ReasonWalletNotFound, "", nil
	}
	var b balanceItem
	if err := attributevalue.UnmarshalMap(old, &b); err != nil {
		return "", "", fault.Transient("corrupt_balance", err)
	}
	if b.Status != WalletActive {
		return events.ReasonWalletFrozen, "", nil
	}
	return events.ReasonInsufficientFunds, "", nil
}

// Decline records a declined charge without moving money. If the charge
// already exists, the stored outcome is replayed (or a conflict recorded).
func (s *Store) Decline(ctx context.Context, req events.ChargeRequested, reason, detail string) (ChargeOutcome, error) {
	it, err := s.newChargeItem(req, ChargeDeclined, reason, detail)
	if err != nil {
		return ChargeOutcome{}, err
	}
	item, err := attributevalue.MarshalMap(it)
	if err != nil {
		panic(fmt.Sprintf("marshal charge item: %v", err))
	}
	cond, err := expression.NewBuilder().
		WithCondition(expression.AttributeNotExists(expression.Name("pk"))).Build()
	if err != nil {
		panic(err)
	}
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                           aws.String(s.table),
		Item:                                item,
		ConditionExpression:                 cond.Condition(),
		ExpressionAttributeNames:            cond.Names(),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		return ChargeOutcome{Status: ChargeDeclined, Reason: reason, Detail: detail, At: it.createdAt()}, nil
	}
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return s.replayCharge(ctx, req, ccf.Item)
	}
	return ChargeOutcome{}, table.Classify(err)
}

// replayCharge answers a delivery whose charge id is already stored: the
// stored outcome if the content matches, a recorded conflict if not.
func (s *Store) replayCharge(ctx context.Context, req events.ChargeRequested, old map[string]types.AttributeValue) (ChargeOutcome, error) {
	c, err := storedImage[chargeItem](ctx, s, chargeKey(req.ChargeID), old, "charge")
	if err != nil {
		return ChargeOutcome{}, err
	}
	at := c.createdAt()
	if c.Hash != ChargeHash(req) {
		if err := s.recordConflict(ctx, req); err != nil {
			return ChargeOutcome{}, err
		}
		return ChargeOutcome{Status: ChargeDeclined, Reason: events.ReasonConflict,
			Detail: "charge_id already used with other content", At: s.now().UTC(), Conflict: true}, nil
	}
	return ChargeOutcome{Status: c.Status, Reason: c.Reason, Detail: c.Detail, At: at, Replayed: true}, nil
}

// recordConflict keeps one item per distinct conflicting payload under the
// charge, counting attempts, so an operator can see who reused the id.
func (s *Store) recordConflict(ctx context.Context, req events.ChargeRequested) error {
	hash := ChargeHash(req)
	upd, err := expression.NewBuilder().WithUpdate(expression.
		Add(expression.Name("attempts"), expression.Value(1)).
		Set(expression.Name("kind"), expression.Value("charge_conflict")).
		Set(expression.Name("marketplace"), expression.Value(req.Marketplace)).
		Set(expression.Name("merchant_id"), expression.Value(req.MerchantID)).
		Set(expression.Name("amount"), expression.Value(req.Amount)).
		Set(expression.Name("currency"), expression.Value(req.Currency)).
		Set(expression.Name("last_seen"), expression.Value(s.now().UTC().Format(time.RFC3339Nano)))).
		Build()
	if err != nil {
		panic(err)
	}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       key(chargePrefix+req.ChargeID, conflictSKPrefix+hash),
		UpdateExpression:          upd.Update(),
		ExpressionAttributeNames:  upd.Names(),
		ExpressionAttributeValues: upd.Values(),
	})
	return table.Classify(err)
}

// ChargeRecord is a stored charge as read back.
type ChargeRecord struct {
	ChargeID, MerchantID, Payer, Currency, Status, Reason, LocalDate string
	Amount, Refunded                                                 int64
	CreatedAt                                                        time.Time
}

// GetCharge reads a charge with a consistent read; ok is false if absent.
func (s *Store) GetCharge(ctx context.Context, chargeID string) (ChargeRecord, bool, error) {
	c, ok, err := s.getChargeItem(ctx, chargeID)
	if err != nil || !ok {
		return ChargeRecord{}, ok, err
	}
	at := c.createdAt()
	return ChargeRecord{ChargeID: c.ChargeID, MerchantID: c.MerchantID, Payer: c.Payer, Currency: c.Currency,
		Status: c.Status, Reason: c.Reason, LocalDate: c.LocalDate, Amount: c.Amount, Refunded: c.Refunded, CreatedAt: at}, true, nil
}
