package ledger

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/money"
	"github.com/sebelas/sebelas/internal/table"
)

// KindCashIn is the kind of a cash-in record, K#<cashin_id> / K.
const KindCashIn = "cashin"

// CashInRecord is a cash-in as stored: what reconciliation compares with a
// bank's statement.
type CashInRecord struct {
	CashInID  string
	Wallet    string
	Amount    money.Amount
	Source    string
	CreatedAt time.Time
}

func (c cashInItem) public() CashInRecord {
	at, _ := time.Parse(time.RFC3339Nano, c.CreatedAt)
	return CashInRecord{CashInID: c.CashInID, Wallet: c.Wallet, Source: c.Source, CreatedAt: at,
		Amount: money.Amount{Minor: c.Amount, Currency: money.Currency(c.Currency)}}
}

// GetCashIn reads one cash-in with a consistent read.
func (s *Store) GetCashIn(ctx context.Context, cashInID string) (CashInRecord, bool, error) {
	c, ok, err := getItem[cashInItem](ctx, s, cashInKey(cashInID), "corrupt_cashin")
	if err != nil || !ok {
		return CashInRecord{}, ok, err
	}
	return c.public(), true, nil
}

// Scanner is the part of the DynamoDB API a full-table read needs.
type Scanner interface {
	Scan(ctx context.Context, in *dynamodb.ScanInput, opts ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

// CashInsCreated calls fn with every cash-in created in [from, to). There
// is no index of cash-ins by date yet (the bank cash-in flow of issue 20
// will bring one), so this is a filtered scan of the whole table: its cost
// follows the table's size, not the period's cash-ins. It returns the pages
// read.
func (s *Store) CashInsCreated(ctx context.Context, db Scanner, from, to time.Time, fn func(CashInRecord) error) (int, error) {
	f := mustFilter(expression.And(
		expression.Name("kind").Equal(expression.Value(KindCashIn)),
		// A whole second before from: strings of mixed precision compare
		// as times only down to the second.
		expression.Name("created_at").GreaterThanEqual(expression.Value(from.UTC().Truncate(time.Second).Add(-time.Second).Format(time.RFC3339))),
	))
	pages := 0
	var start map[string]types.AttributeValue
	for {
		out, err := db.Scan(ctx, &dynamodb.ScanInput{
			TableName: aws.String(s.table), FilterExpression: f.Filter(),
			ExpressionAttributeNames: f.Names(), ExpressionAttributeValues: f.Values(),
			ExclusiveStartKey: start,
		})
		if err != nil {
			return pages, table.Classify(err)
		}
		pages++
		var items []cashInItem
		if err := attributevalue.UnmarshalListOfMaps(out.Items, &items); err != nil {
			return pages, fault.Transient("corrupt_cashin", err)
		}
		for _, it := range items {
			c := it.public()
			// The filter is a coarse cut, this is the exact one.
			if c.CreatedAt.Before(from) || !c.CreatedAt.Before(to) {
				continue
			}
			if err := fn(c); err != nil {
				return pages, err
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return pages, nil
		}
		start = out.LastEvaluatedKey
	}
}

func mustFilter(c expression.ConditionBuilder) expression.Expression {
	e, err := expression.NewBuilder().WithFilter(c).Build()
	if err != nil {
		panic(err)
	}
	return e
}
