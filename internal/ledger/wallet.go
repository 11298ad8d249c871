package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/money"
	"github.com/sebelas/sebelas/internal/redact"
	"github.com/sebelas/sebelas/internal/table"
)

// balanceItem is one wallet's balance in one currency. Held is money set
// aside for an operation whose outcome is not known yet (a top-up in flight);
// it is the payer's but cannot be spent.
type balanceItem struct {
	PK        string `dynamodbav:"pk"`
	SK        string `dynamodbav:"sk"`
	Kind      string `dynamodbav:"kind"`
	Wallet    string `dynamodbav:"wallet"`
	Currency  string `dynamodbav:"currency"`
	Balance   int64  `dynamodbav:"balance"`
	Held      int64  `dynamodbav:"held"`
	Status    string `dynamodbav:"status"`
	Version   int64  `dynamodbav:"version"`
	UpdatedAt string `dynamodbav:"updated_at"`
}

// Balance is a wallet's balance in one currency.
type Balance struct {
	Wallet   string
	Currency money.Currency
	Balance  int64 // spendable, minor units
	Held     int64 // set aside, minor units
	Status   string
	Version  int64
}

func (b balanceItem) public() Balance {
	return Balance{Wallet: b.Wallet, Currency: money.Currency(b.Currency), Balance: b.Balance,
		Held: b.Held, Status: b.Status, Version: b.Version}
}

// cashInItem records money entering the system. The sum of cash-ins is the
// left side of the conservation invariant the audit checks.
type cashInItem struct {
	PK        string `dynamodbav:"pk"`
	SK        string `dynamodbav:"sk"`
	Kind      string `dynamodbav:"kind"`
	CashInID  string `dynamodbav:"cashin_id"`
	Wallet    string `dynamodbav:"wallet"`
	Amount    int64  `dynamodbav:"amount"`
	Currency  string `dynamodbav:"currency"`
	Source    string `dynamodbav:"source"`
	Hash      string `dynamodbav:"payload_hash"`
	CreatedAt string `dynamodbav:"created_at"`
}

// Limits on identifiers the ledger accepts from outside (CLI, operators).
const idBytesMax = 64

func checkID(what, id string) error {
	if id == "" || len(id) > idBytesMax || strings.ContainsAny(id, "#\x00") {
		return fault.Permanentf("invalid_"+what, "%s must be 1..%d bytes without '#'", what, idBytesMax)
	}
	return nil
}

// CashIn credits a wallet with money from outside (bank transfer, card,
// agent), once per cashInID: the record and the credit are one transaction,
// and a repeat with the same content is a no-op that reports replayed=true.
// The balance item is created on first credit.
func (s *Store) CashIn(ctx context.Context, cashInID, wallet string, amt money.Amount, source string) (replayed bool, err error) {
	if err := checkID("cashin_id", cashInID); err != nil {
		return false, err
	}
	if err := checkID("wallet", wallet); err != nil {
		return false, err
	}
	if _, err := money.New(amt.Minor, amt.Currency); err != nil || amt.Minor == 0 {
		return false, fault.Permanentf("invalid_amount", "cash-in amount must be positive: %v", err)
	}
	h := sha256.Sum256([]byte(fmt.Sprintf("v1;%s;%s;%d;%s", cashInID, wallet, amt.Minor, amt.Currency)))
	hash := hex.EncodeToString(h[:])
	now := s.now().UTC().Format(time.RFC3339Nano)
	rec, err := attributevalue.MarshalMap(cashInItem{
		PK: cashInPrefix + cashInID, SK: cashInSK, Kind: "cashin", CashInID: cashInID, Wallet: wallet,
		Amount: amt.Minor, Currency: string(amt.Currency), Source: source, Hash: hash, CreatedAt: now,
	})
	if err != nil {
		panic(err)
	}
	putCond, err := expression.NewBuilder().WithCondition(expression.AttributeNotExists(expression.Name("pk"))).Build()
	if err != nil {
		panic(err)
	}
	zero := expression.Value(0)
	credit, err := expression.NewBuilder().
		WithCondition(expression.Or(
			expression.AttributeNotExists(expression.Name("pk")),
			expression.Name("status").Equal(expression.Value(WalletActive)),
		)).
		WithUpdate(expression.
			Set(expression.Name("balance"), expression.Plus(expression.Name("balance").IfNotExists(zero), expression.Value(amt.Minor))).
			Set(expression.Name("held"), expression.Name("held").IfNotExists(zero)).
			Set(expression.Name("status"), expression.Name("status").IfNotExists(expression.Value(WalletActive))).
			Set(expression.Name("version"), expression.Plus(expression.Name("version").IfNotExists(zero), expression.Value(1))).
			Set(expression.Name("kind"), expression.Value("balance")).
			Set(expression.Name("wallet"), expression.Value(wallet)).
			Set(expression.Name("currency"), expression.Value(string(amt.Currency))).
			Set(expression.Name("updated_at"), expression.Value(now))).
		Build()
	if err != nil {
		panic(err)
	}
	_, err = s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		TransactItems: []types.TransactWriteItem{
			{Put: &types.Put{
				TableName: aws.String(s.table), Item: rec,
				ConditionExpression: putCond.Condition(), ExpressionAttributeNames: putCond.Names(),
				ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
			}},
			{Update: &types.Update{
				TableName: aws.String(s.table), Key: balanceKey(wallet, string(amt.Currency)),
				ConditionExpression: credit.Condition(), UpdateExpression: credit.Update(),
				ExpressionAttributeNames: credit.Names(), ExpressionAttributeValues: credit.Values(),
			}},
		},
	})
	if err == nil {
		return false, nil
	}
	reasons, ok := table.CancellationReasons(err)
	if !ok || len(reasons) != 2 {
		return false, table.Classify(err)
	}
	if table.ConditionFailedAt(reasons, 0) {
		prev, err := storedImage[cashInItem](ctx, s, cashInKey(cashInID), reasons[0].Item, "cashin")
		if err != nil {
			return false, err
		}
		if prev.Hash != hash {
			return false, fault.Permanentf("conflict", "cash-in %s already recorded with other content", cashInID)
		}
		return true, nil
	}
	if table.ConditionFailedAt(reasons, 1) {
		return false, fault.Permanentf("wallet_frozen", "wallet %s is not active", redact.Wallet(wallet))
	}
	return false, table.Classify(err)
}

// GetBalance reads one balance with a consistent read; ok is false when the
// wallet has no balance in that currency.
func (s *Store) GetBalance(ctx context.Context, wallet string, cur money.Currency) (Balance, bool, error) {
	b, ok, err := getItem[balanceItem](ctx, s, balanceKey(wallet, string(cur)), "corrupt_balance")
	if err != nil || !ok {
		return Balance{}, ok, err
	}
	return b.public(), true, nil
}

// balancesMax bounds one wallet's balances: there are seven currencies.
const balancesMax = 16

// Balances lists a wallet's balances in every currency.
func (s *Store) Balances(ctx context.Context, wallet string) ([]Balance, error) {
	kc, err := expression.NewBuilder().WithKeyCondition(expression.KeyAnd(
		expression.Key("pk").Equal(expression.Value(walletPK(wallet))),
		expression.Key("sk").BeginsWith(balancePrefix),
	)).Build()
	if err != nil {
		panic(err)
	}
	out, err := s.db.Query(ctx, &dynamodb.QueryInput{
		TableName: aws.String(s.table), KeyConditionExpression: kc.KeyCondition(),
		ExpressionAttributeNames: kc.Names(), ExpressionAttributeValues: kc.Values(),
		ConsistentRead: aws.Bool(true), Limit: aws.Int32(balancesMax),
	})
	if err != nil {
		return nil, table.Classify(err)
	}
	var items []balanceItem
	if err := attributevalue.UnmarshalListOfMaps(out.Items, &items); err != nil {
		return nil, fault.Transient("corrupt_balance", err)
	}
	res := make([]Balance, 0, len(items))
	for _, b := range items {
		res = append(res, b.public())
	}
	return res, nil
}

// SetStatus freezes or unfreezes a wallet's balance in one currency. A frozen
// balance cannot be charged or credited.
func (s *Store) SetStatus(ctx context.Context, wallet string, cur money.Currency, status string) error {
	if status != WalletActive && status != WalletFrozen {
		panic("ledger.SetStatus: unknown status " + status)
	}
	upd, err := expression.NewBuilder().
		WithCondition(expression.AttributeExists(expression.Name("pk"))).
		WithUpdate(expression.
			Set(expression.Name("status"), expression.Value(status)).
			Set(expression.Name("version"), expression.Name("version").Plus(expression.Value(1)))).
		Build()
	if err != nil {
		panic(err)
	}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: balanceKey(wallet, string(cur)),
		ConditionExpression: upd.Condition(), UpdateExpression: upd.Update(),
		ExpressionAttributeNames: upd.Names(), ExpressionAttributeValues: upd.Values(),
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return fault.Permanentf("wallet_not_found", "wallet %s has no %s balance", redact.Wallet(wallet), cur)
	}
	return table.Classify(err)
}
