package ledger

import (
	"context"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	tabledef "github.com/sebelas/sebelas/infra/dynamodb"
	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/table"
)

// The unsettled index: every succeeded charge and every succeeded refund (a
// "unit" of settlement) carries a gsi1 entry from the moment its money moves
// until settlement marks it settled, in the same transaction as the credit
// to the merchant:
//
//	gsi1pk = UN#<market>#<shard>                  shard by business id
//	gsi1sk = <local date>#<merchant>#C#<charge_id>  (#R#<refund_id> for a refund)
//
// Why this and not a merchant-day index:
//   - Exactness does not rest on the index being up to date. A unit is
//     settled by a conditional update of the unit itself (gsi1pk must still
//     be the unsettled key), so a stale index row, a second runner or a
//     retried transaction can never settle it twice; a unit the index does
//     not show yet (GSI lag, a charge that committed after midnight with the
//     date before, a refund of a settled charge) stays unsettled and the next
//     run finds it. Every unit is settled exactly once, whenever it arrives.
//   - The charge path writes nothing for settlement: the entry rides on the
//     charge item's own put (DESIGN.md's single two-item transaction).
//   - Settlement reads only what is unsettled, market by market: its cost
//     follows the day's activity, not the number of merchants or shards.
const (
	unsettledPrefix = "UN#"

	// UnsettledShards spreads one market's unsettled units over this many
	// GSI partitions. DynamoDB caps a GSI partition at about 1,000 writes
	// per second; a unit costs two index writes (in, then out at
	// settlement), and Indonesia at 11.11 midnight peaks near 20,000
	// payments/s, so 64 shards keep each under ~320 writes/s.
	UnsettledShards = 64

	// unsettledPageItemsMax bounds one page of the index: a unit as
	// projected (ALL) is ~600 bytes, well under the 1 MB page.
	unsettledPageItemsMax = 1000

	// UnitsPerBatchMax is how many units one settlement transaction marks.
	// TransactWriteItems takes 100 actions; settle adds its own three (the
	// settlement record, the merchant balance, the outbox entry).
	UnitsPerBatchMax = 97
)

// Unit kinds.
const (
	UnitCharge = "C"
	UnitRefund = "R"
)

// Unit is one succeeded charge or refund not yet settled, as the unsettled
// index shows it.
type Unit struct {
	Kind         string // UnitCharge or UnitRefund
	ID           string // charge_id or refund_id
	MerchantID   string
	Currency     string
	Amount       int64
	BusinessDate string // the market's local date when the money moved
	indexPK      string // the gsi1pk the unit must still carry to be settled
}

// UnsettledPK is the gsi1 partition of one shard of a market's unsettled
// units.
func UnsettledPK(marketCode string, shard int) string {
	if shard < 0 || shard >= UnsettledShards {
		panic(fmt.Sprintf("ledger: unsettled shard %d out of range", shard))
	}
	return fmt.Sprintf("%s%s#%02d", unsettledPrefix, marketCode, shard)
}

func unsettledSK(localDate, merchantID, kind, id string) string {
	return localDate + "#" + merchantID + "#" + kind + "#" + id
}

func unitShard(id string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return int(h.Sum32() % UnsettledShards)
}

// unitRow is what settlement reads of a unit in the index.
type unitRow struct {
	PK         string `dynamodbav:"pk"`
	Kind       string `dynamodbav:"kind"`
	Status     string `dynamodbav:"status"`
	ChargeID   string `dynamodbav:"charge_id"`
	RefundID   string `dynamodbav:"refund_id"`
	MerchantID string `dynamodbav:"merchant_id"`
	Currency   string `dynamodbav:"currency"`
	Amount     int64  `dynamodbav:"amount"`
	LocalDate  string `dynamodbav:"local_date"`
	GSI1PK     string `dynamodbav:"gsi1pk"`
}

// UnsettledPage is one page of a shard's unsettled units dated on or
// before a date.
type UnsettledPage struct {
	Units []Unit
	// Next continues the shard; nil when the shard is done.
	Next map[string]types.AttributeValue
}

// UnsettledUnits reads one page of shard's unsettled units of market dated
// through (YYYY-MM-DD) or earlier, from start (nil: the beginning). The
// index is eventually consistent: a page may miss units that committed a
// moment ago (a later run settles them) and may show units settled a moment
// ago (MarkSettled's condition refuses them).
func (s *Store) UnsettledUnits(ctx context.Context, marketCode string, shard int, through string, start map[string]types.AttributeValue, limit int32) (UnsettledPage, error) {
	if limit <= 0 || limit > unsettledPageItemsMax {
		limit = unsettledPageItemsMax
	}
	// '$' sorts right after '#': every key "<through>#..." and every
	// earlier date is below "<through>$".
	expr, err := expression.NewBuilder().WithKeyCondition(
		expression.Key(tabledef.GSI1PK).Equal(expression.Value(UnsettledPK(marketCode, shard))).
			And(expression.Key(tabledef.GSI1SK).LessThan(expression.Value(through + "$")))).Build()
	if err != nil {
		panic(err)
	}
	out, err := s.db.Query(ctx, &dynamodb.QueryInput{
		TableName: aws.String(s.table), IndexName: aws.String(tabledef.GSI1),
		KeyConditionExpression: expr.KeyCondition(), ExpressionAttributeNames: expr.Names(),
		ExpressionAttributeValues: expr.Values(), ExclusiveStartKey: start, Limit: aws.Int32(limit),
	})
	if err != nil {
		return UnsettledPage{}, table.Classify(err)
	}
	var rows []unitRow
	if err := attributevalue.UnmarshalListOfMaps(out.Items, &rows); err != nil {
		return UnsettledPage{}, fault.Transient("corrupt_unit", err)
	}
	page := UnsettledPage{Units: make([]Unit, 0, len(rows)), Next: out.LastEvaluatedKey}
	for _, r := range rows {
		u := Unit{MerchantID: r.MerchantID, Currency: r.Currency, Amount: r.Amount,
			BusinessDate: r.LocalDate, indexPK: r.GSI1PK}
		switch {
		case r.Kind == "charge" && r.Status == ChargeSucceeded:
			u.Kind, u.ID = UnitCharge, r.ChargeID
		case r.Kind == KindRefund && r.Status == RefundSucceeded:
			u.Kind, u.ID = UnitRefund, r.RefundID
		default:
			// Only succeeded money is indexed (newChargeItem, commitRefund);
			// anything else under UN# is a bug to look at, not money.
			return UnsettledPage{}, fault.Transient("corrupt_unit", fmt.Errorf("%.80s is %s %s in the unsettled index", r.PK, r.Kind, r.Status))
		}
		if u.Amount <= 0 || u.ID == "" || u.MerchantID == "" {
			return UnsettledPage{}, fault.Transient("corrupt_unit", fmt.Errorf("%.80s: amount %d", r.PK, r.Amount))
		}
		page.Units = append(page.Units, u)
	}
	return page, nil
}

// MarkSettled returns the transaction actions that mark units settled into
// settlementID: each sets settlement_id and settled_at and leaves the
// unsettled index, on condition that it is still in it under the key it was
// read with. Settle puts them in one transaction with the merchant's credit,
// so a unit's money reaches the merchant exactly when it is marked, once.
// A failed condition (reason ConditionalCheckFailed at the unit's position)
// means another run settled it first: drop it and send the rest again.
func (s *Store) MarkSettled(units []Unit, settlementID string, at time.Time) []types.TransactWriteItem {
	if len(units) == 0 || len(units) > UnitsPerBatchMax || settlementID == "" {
		panic(fmt.Sprintf("ledger.MarkSettled: %d units, settlement %q", len(units), settlementID))
	}
	ts := at.UTC().Format(time.RFC3339Nano)
	out := make([]types.TransactWriteItem, 0, len(units))
	for _, u := range units {
		if u.indexPK == "" {
			panic("ledger.MarkSettled: a unit not read from the unsettled index")
		}
		k := chargeKey(u.ID)
		if u.Kind == UnitRefund {
			k = refundKey(u.ID)
		}
		upd, err := expression.NewBuilder().
			WithCondition(expression.Name(tabledef.GSI1PK).Equal(expression.Value(u.indexPK))).
			WithUpdate(expression.
				Set(expression.Name("settlement_id"), expression.Value(settlementID)).
				Set(expression.Name("settled_at"), expression.Value(ts)).
				Remove(expression.Name(tabledef.GSI1PK)).
				Remove(expression.Name(tabledef.GSI1SK))).Build()
		if err != nil {
			panic(err)
		}
		out = append(out, types.TransactWriteItem{Update: &types.Update{
			TableName: aws.String(s.table), Key: k,
			ConditionExpression: upd.Condition(), UpdateExpression: upd.Update(),
			ExpressionAttributeNames: upd.Names(), ExpressionAttributeValues: upd.Values(),
		}})
	}
	return out
}
