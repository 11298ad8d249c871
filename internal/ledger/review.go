package ledger

// Charges held for fraud review. When fraud answers `review`, the charge is
// recorded with status in_review and NO money moves (no hold on the balance
// either: the payer may spend meanwhile, and the approval checks the funds
// again). The risk team's decision (charge.reviewed) then moves the charge
// out of in_review exactly once:
//
//	approve: status in_review → succeeded + debit, ONE TransactWriteItems
//	         (as Charge: the charge's condition, status = in_review, is the
//	         idempotency check; the payer's balance carries the funds check),
//	         or → declined with the reason the debit failed;
//	reject:  status in_review → declined (reason fraud), one UpdateItem.
//
// Every later or concurrent decision for the same charge fails on the
// status condition and replays the stored outcome: the first decision wins,
// and a redelivered review never charges twice.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/money"
	"github.com/sebelas/sebelas/internal/table"
)

// ChargeInReview is the status of a charge held for fraud review.
const ChargeInReview = "in_review"

const reviewDetailRejected = "rejected in fraud review"

// reviewAttemptsMax bounds the re-reads when the charge changes between the
// read and the write (a concurrent decision): after that, the stored outcome
// is replayed or the Broker retries.
const reviewAttemptsMax = 3

// reviewedItem is the part of a charge item a review reads.
type reviewedItem struct {
	chargeItem
	ReviewedBy string `dynamodbav:"reviewed_by,omitempty"`
	ReviewedAt string `dynamodbav:"reviewed_at,omitempty"`
}

func (r reviewedItem) outcome() ChargeOutcome {
	at := r.createdAt()
	if t, err := time.Parse(time.RFC3339Nano, r.ReviewedAt); err == nil {
		at = t
	}
	return ChargeOutcome{Status: r.Status, Reason: r.Reason, Detail: r.Detail, At: at, Replayed: true}
}

func (r reviewedItem) request() events.ChargeRequested {
	return events.ChargeRequested{ChargeID: r.ChargeID, Marketplace: r.Marketplace, MerchantID: r.MerchantID,
		PayerWallet: r.Payer, Amount: r.Amount, Currency: r.Currency}
}

// HoldForReview records a charge fraud sent to review, moving no money. A
// redelivery replays the stored outcome; the same charge id with other
// content is a recorded conflict.
func (s *Store) HoldForReview(ctx context.Context, req events.ChargeRequested) (ChargeOutcome, error) {
	it, err := s.newChargeItem(req, ChargeInReview, events.ReasonFraudReview, "held for fraud review")
	if err != nil {
		return ChargeOutcome{}, err
	}
	item, err := attributevalue.MarshalMap(it)
	if err != nil {
		panic(fmt.Sprintf("marshal charge item: %v", err))
	}
	cond, err := expression.NewBuilder().WithCondition(expression.AttributeNotExists(expression.Name("pk"))).Build()
	if err != nil {
		panic(err)
	}
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.table), Item: item,
		ConditionExpression: cond.Condition(), ExpressionAttributeNames: cond.Names(),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		return ChargeOutcome{Status: ChargeInReview, Reason: it.Reason, Detail: it.Detail, At: it.createdAt()}, nil
	}
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return s.replayCharge(ctx, req, ccf.Item)
	}
	return ChargeOutcome{}, table.Classify(err)
}

// ReviewCharge applies the risk team's decision to a charge held for review
// and returns the outcome with the charge as stored (for the reply). A
// charge no longer in review replays its outcome; an unknown charge id is a
// permanent "unknown_charge".
func (s *Store) ReviewCharge(ctx context.Context, chargeID string, approve bool, reviewer string, limits money.Limits) (ChargeOutcome, events.ChargeRequested, error) {
	for range reviewAttemptsMax {
		r, err := s.readForReview(ctx, chargeID)
		if err != nil {
			return ChargeOutcome{}, events.ChargeRequested{}, err
		}
		req := r.request()
		if r.Status != ChargeInReview {
			return r.outcome(), req, nil
		}
		var (
			out  ChargeOutcome
			done bool
		)
		switch {
		case !approve:
			out, done, err = s.declineReviewed(ctx, req, reviewer, events.ReasonFraud, reviewDetailRejected)
		default:
			out, done, err = s.approveReviewed(ctx, req, reviewer, limits)
		}
		if err != nil {
			return ChargeOutcome{}, req, err
		}
		if done {
			return out, req, nil
		}
		// The status changed under us: read again and replay.
	}
	return ChargeOutcome{}, events.ChargeRequested{}, fault.Transient("review_contention", fmt.Errorf("charge %s changed %d times during its review", chargeID, reviewAttemptsMax))
}

func (s *Store) readForReview(ctx context.Context, chargeID string) (reviewedItem, error) {
	got, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: chargeKey(chargeID), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return reviewedItem{}, table.Classify(err)
	}
	if len(got.Item) == 0 {
		return reviewedItem{}, fault.Permanentf(events.ReasonUnknownCharge, "no charge %.64q to review", chargeID)
	}
	var r reviewedItem
	if err := attributevalue.UnmarshalMap(got.Item, &r); err != nil {
		return reviewedItem{}, fault.Transient("corrupt_charge", err)
	}
	return r, nil
}

// inReview is the condition of every review write.
func inReview() expression.ConditionBuilder {
	return expression.Name("status").Equal(expression.Value(ChargeInReview))
}

// declineReviewed moves a charge in review to declined. done is false when
// the charge was no longer in review.
func (s *Store) declineReviewed(ctx context.Context, req events.ChargeRequested, reviewer, reason, detail string) (ChargeOutcome, bool, error) {
	now := s.now().UTC()
	expr, err := expression.NewBuilder().WithCondition(inReview()).WithUpdate(expression.
		Set(expression.Name("status"), expression.Value(ChargeDeclined)).
		Set(expression.Name("reason"), expression.Value(reason)).
		Set(expression.Name("detail"), expression.Value(detail)).
		Set(expression.Name("reviewed_by"), expression.Value(reviewer)).
		Set(expression.Name("reviewed_at"), expression.Value(now.Format(time.RFC3339Nano)))).Build()
	if err != nil {
		panic(err)
	}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: chargeKey(req.ChargeID),
		ConditionExpression: expr.Condition(), UpdateExpression: expr.Update(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return ChargeOutcome{}, false, nil
	}
	if err != nil {
		return ChargeOutcome{}, false, table.Classify(err)
	}
	return ChargeOutcome{Status: ChargeDeclined, Reason: reason, Detail: detail, At: now}, true, nil
}

// approveReviewed moves a charge in review to succeeded and debits the payer
// in one transaction, or declines it with the reason the debit failed.
func (s *Store) approveReviewed(ctx context.Context, req events.ChargeRequested, reviewer string, limits money.Limits) (ChargeOutcome, bool, error) {
	amt, err := money.New(req.Amount, money.Currency(req.Currency))
	if err != nil {
		return ChargeOutcome{}, false, fault.Permanent("invalid_amount", err)
	}
	if err := limits.Check(amt); err != nil {
		return s.declineReviewed(ctx, req, reviewer, events.ReasonAmountLimit, "above the per-charge maximum")
	}
	// The succeeded charge's settlement fields, as Charge writes them: the
	// merchant's day is the market's local day when the money moves.
	it, err := s.newChargeItem(req, ChargeSucceeded, "", "")
	if err != nil {
		return ChargeOutcome{}, false, err
	}
	settle, err := expression.NewBuilder().WithCondition(inReview()).WithUpdate(expression.
		Set(expression.Name("status"), expression.Value(ChargeSucceeded)).
		Set(expression.Name("local_date"), expression.Value(it.LocalDate)).
		Set(expression.Name("gsi1pk"), expression.Value(it.GSI1PK)).
		Set(expression.Name("gsi1sk"), expression.Value(it.GSI1SK)).
		Set(expression.Name("reviewed_by"), expression.Value(reviewer)).
		Set(expression.Name("reviewed_at"), expression.Value(it.CreatedAt)).
		Remove(expression.Name("reason")).
		Remove(expression.Name("detail"))).Build()
	if err != nil {
		panic(err)
	}
	_, err = s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		TransactItems: []types.TransactWriteItem{
			{Update: &types.Update{
				TableName: aws.String(s.table), Key: chargeKey(req.ChargeID),
				ConditionExpression: settle.Condition(), UpdateExpression: settle.Update(),
				ExpressionAttributeNames: settle.Names(), ExpressionAttributeValues: settle.Values(),
			}},
			s.debitItem(req, it.CreatedAt),
		},
	})
	if err == nil {
		return ChargeOutcome{Status: ChargeSucceeded, At: it.createdAt()}, true, nil
	}
	reasons, ok := table.CancellationReasons(err)
	if !ok || len(reasons) != 2 {
		return ChargeOutcome{}, false, table.Classify(err)
	}
	if table.ConditionFailedAt(reasons, 0) {
		return ChargeOutcome{}, false, nil // decided meanwhile: replay
	}
	if !table.ConditionFailedAt(reasons, 1) {
		return ChargeOutcome{}, false, table.Classify(err)
	}
	reason, detail, err := s.whyNoDebit(ctx, req, reasons[1].Item)
	if err != nil {
		return ChargeOutcome{}, false, err
	}
	return s.declineReviewed(ctx, req, reviewer, reason, detail)
}
