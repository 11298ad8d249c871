package ledger

// Holds: money set aside on a payer's balance while the outcome of an
// operation with a slow partner (a phone top-up waiting on a mobile
// operator) is not known.
//
//	hold     balance −= amt, held += amt   when active and balance >= amt
//	capture  held −= amt                   the money leaves the wallet for good
//	release  held −= amt, balance += amt   the money comes back, spendable
//
// The three are transaction items, not calls: the owner of the operation
// (package topup for T#<topup_id> items) puts each one in ONE
// TransactWriteItems with a conditional write of its own record, and that
// record's condition is what makes the step happen once. A hold goes with
// the put of the record (attribute_not_exists); a capture or a release goes
// with the record's status change held|pending → succeeded|failed
// (status IN (...)). A redelivered or concurrent second capture or release
// of the same operation therefore fails on the record and nothing of it is
// written. The balance item alone cannot tell two holds apart; what its
// conditions guarantee is that no capture or release ever takes more than
// is held, so held can never go negative whatever a caller does.
//
// Capture and release have no status condition: a wallet frozen while its
// top-up was in flight must still pay for airtime the operator delivered,
// and must still get back money for airtime it did not.
//
// # Accounting for top-ups (for the audit)
//
// A captured top-up is money that left the wallets: it went to the
// operator (through the aggregator) and to the wallet's fee income. With
// top-ups, DESIGN.md's conservation invariant, per currency, reads
//
//	cash in = Σ balance + Σ held + unsettled charges − unsettled refunds
//	          + settled merchant balances + captured top-ups
//
// where captured top-ups = Σ amount of the items with kind = "topup" and
// status = "succeeded" (pk T#<topup_id>, sk T). Every step keeps it:
// a hold moves amount from balance to held inside one item; a release moves
// it back; a capture takes it out of held in the same transaction that
// turns the top-up to succeeded. A failed top-up moved nothing in the end.
// Two more checks the audit can make at any time:
//
//	Σ held (per currency) = Σ amount of topup items with status held or pending
//	no balance item has held < 0
//
// and, once no top-up is in flight, Σ held = 0.

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/money"
)

// HoldItem is the transaction item that moves amount (minor units of
// currency) from the wallet's balance to its held amount. Its condition is
// that the balance exists, is active and covers amount; the old image is
// returned on failure, for WhyNoHold.
func (s *Store) HoldItem(wallet, currency string, amount int64) types.TransactWriteItem {
	checkHoldAmount(amount)
	expr, err := expression.NewBuilder().
		WithCondition(spendable(amount)).
		WithUpdate(s.stamp(expression.
			Set(expression.Name("balance"), expression.Name("balance").Minus(expression.Value(amount))).
			Set(expression.Name("held"), expression.Name("held").Plus(expression.Value(amount))))).
		Build()
	if err != nil {
		panic(err)
	}
	return s.balanceUpdate(wallet, currency, expr)
}

// CaptureItem is the transaction item that takes amount out of the
// wallet's held amount for good: the money has left the wallet. Its
// condition is that at least amount is held.
func (s *Store) CaptureItem(wallet, currency string, amount int64) types.TransactWriteItem {
	checkHoldAmount(amount)
	expr, err := expression.NewBuilder().
		WithCondition(expression.And(
			expression.AttributeExists(expression.Name("pk")),
			expression.Name("held").GreaterThanEqual(expression.Value(amount)),
		)).
		WithUpdate(s.stamp(expression.
			Set(expression.Name("held"), expression.Name("held").Minus(expression.Value(amount))))).
		Build()
	if err != nil {
		panic(err)
	}
	return s.balanceUpdate(wallet, currency, expr)
}

// ReleaseItem is the transaction item that gives a held amount back to the
// wallet's balance. Its condition is that at least amount is held.
func (s *Store) ReleaseItem(wallet, currency string, amount int64) types.TransactWriteItem {
	checkHoldAmount(amount)
	expr, err := expression.NewBuilder().
		WithCondition(expression.And(
			expression.AttributeExists(expression.Name("pk")),
			expression.Name("held").GreaterThanEqual(expression.Value(amount)),
		)).
		WithUpdate(s.stamp(expression.
			Set(expression.Name("held"), expression.Name("held").Minus(expression.Value(amount))).
			Set(expression.Name("balance"), expression.Name("balance").Plus(expression.Value(amount))))).
		Build()
	if err != nil {
		panic(err)
	}
	return s.balanceUpdate(wallet, currency, expr)
}

// WhyNoHold tells why a HoldItem's condition failed, from the old image
// the cancellation reason carried: events.ReasonWalletNotFound,
// ReasonCurrencyMismatch (the wallet has balances, not in this currency),
// ReasonWalletFrozen or ReasonInsufficientFunds. Only the not-found case
// costs a read.
func (s *Store) WhyNoHold(ctx context.Context, wallet, currency string, old map[string]types.AttributeValue) (string, error) {
	if len(old) == 0 {
		others, err := s.Balances(ctx, wallet)
		if err != nil {
			return "", err
		}
		if len(others) > 0 {
			return events.ReasonCurrencyMismatch, nil
		}
		return events.ReasonWalletNotFound, nil
	}
	var b balanceItem
	if err := attributevalue.UnmarshalMap(old, &b); err != nil {
		return "", fault.Transient("corrupt_balance", err)
	}
	if b.Status != WalletActive {
		return events.ReasonWalletFrozen, nil
	}
	return events.ReasonInsufficientFunds, nil
}

// checkHoldAmount panics on an amount no caller may pass: top-up amounts
// are validated prices, positive and within money.AmountMinorMax.
func checkHoldAmount(amount int64) {
	if amount <= 0 || amount > money.AmountMinorMax {
		panic(fmt.Sprintf("ledger: hold amount %d out of 1..%d", amount, money.AmountMinorMax))
	}
}

// stamp adds the bookkeeping every balance change makes.
func (s *Store) stamp(u expression.UpdateBuilder) expression.UpdateBuilder {
	return u.
		Set(expression.Name("version"), expression.Name("version").Plus(expression.Value(1))).
		Set(expression.Name("updated_at"), expression.Value(s.now().UTC().Format(time.RFC3339Nano)))
}

func (s *Store) balanceUpdate(wallet, currency string, expr expression.Expression) types.TransactWriteItem {
	return types.TransactWriteItem{Update: &types.Update{
		TableName:                           aws.String(s.table),
		Key:                                 balanceKey(wallet, currency),
		ConditionExpression:                 expr.Condition(),
		UpdateExpression:                    expr.Update(),
		ExpressionAttributeNames:            expr.Names(),
		ExpressionAttributeValues:           expr.Values(),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}}
}

// HeldTotal sums the held amounts of the given wallets' balances in one
// currency, with consistent reads: what tests and the reliability checks
// use to see that every hold was captured or released.
func (s *Store) HeldTotal(ctx context.Context, currency money.Currency, wallets ...string) (int64, error) {
	var total int64
	for _, w := range wallets {
		b, ok, err := s.GetBalance(ctx, w, currency)
		if err != nil {
			return 0, err
		}
		if ok {
			total += b.Held
		}
	}
	return total, nil
}
