// Package settle pays merchants: for a market's closed local day it totals
// each active merchant's charges and refunds from the sharded GSI, writes one
// settlement record and moves the net into the merchant's balance, in one
// transaction, exactly once per merchant, market and day.
//
// Items it owns:
//
//	S#<merchant>#<date> / <currency>     the settlement, written once
//	S#<merchant>#<date> / P#<currency>   partial sums of a settlement in progress
//	SR#<market>#<date>  / RUN            the run over a market-day: cursor, pass
//	MW#<merchant>       / BAL#<currency> the merchant's settled balance
//
// Merchants are credited only here, never per charge (DESIGN.md: a merchant
// taking thousands of charges a second would be one hot item). Merchant
// balances live under their own prefix, apart from payers' W# wallets, so a
// merchant id can never collide with a wallet id and the audit can tell
// "settled merchant balances" from "wallet balances" in the conservation
// invariant.
//
// Exactly once: the settlement record is put with attribute_not_exists in the
// same transaction as the credit, so a second tick, a redelivery or two runs
// at once credit a merchant-day once; everything else (the run's cursor, the
// partial sums) is progress bookkeeping that makes a resumed run cheap, never
// what makes it correct.
package settle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
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
	"github.com/sebelas/sebelas/internal/market"
	"github.com/sebelas/sebelas/internal/table"
)

// Kinds of the items settle writes (the kind attribute).
const (
	KindSettlement      = "settlement"
	KindProgress        = "settlement_progress"
	KindRun             = "settlement_run"
	KindMerchantBalance = "merchant_balance"
)

// Run statuses.
const (
	RunRunning = "running"
	RunDone    = "done"
)

// Reasons of settle's faults.
const (
	ReasonDayOpen  = "business_day_open"
	ReasonBadDate  = "invalid_business_date"
	ReasonOverflow = "settlement_overflow"
)

const (
	settlementPrefix      = "S#"
	progressSKPrefix      = "P#"
	runPrefix             = "SR#"
	runSK                 = "RUN"
	merchantBalancePrefix = "MW#"
	balanceSKPrefix       = "BAL#"
	chargeSKPrefix        = "C#" // gsi1sk of a charge (ledger)
	refundSKPrefix        = "R#" // gsi1sk of a refund (ledger)

	// PageItemsDefault is the Limit of one GSI page. A charge projected to
	// the five attributes read here is ~150 bytes, so a page is well under
	// DynamoDB's 1 MB per page; 1,000 keeps one page to tens of ms.
	PageItemsDefault = 1000
	// CheckpointPagesDefault: partial sums are saved every this many pages
	// (50,000 items, a second or two of reading), so a merchant with a
	// million charges whose run is cut loses at most that much work.
	CheckpointPagesDefault = 50
	// markersPageItems is the Limit of one page of the merchant-day index.
	markersPageItems = 500

	// CloseGraceMs is how long after local midnight a day may be settled.
	// A charge's local date is fixed when its item is built, and its
	// transaction lands within the client's retries (seconds); a minute
	// covers that and the GSI's propagation. The PingSources fire at 00:05.
	CloseGraceMs = 60_000

	// settlementIDBytesMax is the schema's id limit.
	settlementIDBytesMax = 64
)

// DB is the part of the DynamoDB API settle uses; *dynamodb.Client
// satisfies it.
type DB interface {
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

var _ DB = (*dynamodb.Client)(nil)

// Options tune a Store; the zero value takes the defaults.
type Options struct {
	Now             func() time.Time
	PageItems       int32 // GSI page size (tests make it tiny)
	CheckpointPages int   // pages between two saves of partial sums
}

// Store settles on one table.
type Store struct {
	db              DB
	table           string
	now             func() time.Time
	pageItems       int32
	checkpointPages int
}

// New returns a settlement store on table.
func New(db DB, tableName string, opts Options) *Store {
	if db == nil || tableName == "" {
		panic("settle.New: db and table are required")
	}
	if opts.PageItems < 0 || opts.CheckpointPages < 0 {
		panic("settle.New: negative page size or checkpoint interval")
	}
	s := &Store{db: db, table: tableName, now: opts.Now, pageItems: opts.PageItems, checkpointPages: opts.CheckpointPages}
	if s.now == nil {
		s.now = time.Now
	}
	if s.pageItems == 0 {
		s.pageItems = PageItemsDefault
	}
	if s.checkpointPages == 0 {
		s.checkpointPages = CheckpointPagesDefault
	}
	return s
}

// settlementItem is one merchant's settled day in one currency.
type settlementItem struct {
	PK           string `dynamodbav:"pk"`
	SK           string `dynamodbav:"sk"`
	Kind         string `dynamodbav:"kind"`
	SettlementID string `dynamodbav:"settlement_id"`
	MerchantID   string `dynamodbav:"merchant_id"`
	Market       string `dynamodbav:"market"`
	Currency     string `dynamodbav:"currency"`
	BusinessDate string `dynamodbav:"business_date"`
	ChargesCount int64  `dynamodbav:"charges_count"`
	ChargesTotal int64  `dynamodbav:"charges_total"`
	RefundsCount int64  `dynamodbav:"refunds_count"`
	RefundsTotal int64  `dynamodbav:"refunds_total"`
	Net          int64  `dynamodbav:"net"`
	SettledAt    string `dynamodbav:"settled_at"`
}

// progressItem is the partial sums of a merchant-day being totalled: every
// item of shards below Shard, and of Shard up to and including the key
// LastPK/LastSK/LastGSI1SK (none: Shard not started).
type progressItem struct {
	PK           string `dynamodbav:"pk"`
	SK           string `dynamodbav:"sk"`
	Kind         string `dynamodbav:"kind"`
	Shard        int    `dynamodbav:"shard"`
	LastGSI1SK   string `dynamodbav:"last_gsi1sk,omitempty"`
	LastPK       string `dynamodbav:"last_pk,omitempty"`
	LastSK       string `dynamodbav:"last_sk,omitempty"`
	ChargesCount int64  `dynamodbav:"charges_count"`
	ChargesTotal int64  `dynamodbav:"charges_total"`
	RefundsCount int64  `dynamodbav:"refunds_count"`
	RefundsTotal int64  `dynamodbav:"refunds_total"`
	Pages        int64  `dynamodbav:"pages"`
	UpdatedAt    string `dynamodbav:"updated_at"`
}

// runItem is the progress of a run over one market-day. Cursor is
// "<shard, two digits>#<merchant>" of the last merchant passed: the order in
// which merchants are visited (shards in order, merchants in sort-key order
// inside a shard) is the order of these strings, so "cursor < :next" keeps
// the cursor monotonic even with two runners.
type runItem struct {
	PK           string `dynamodbav:"pk"`
	SK           string `dynamodbav:"sk"`
	Kind         string `dynamodbav:"kind"`
	Market       string `dynamodbav:"market"`
	BusinessDate string `dynamodbav:"business_date"`
	Status       string `dynamodbav:"status"`
	Pass         int64  `dynamodbav:"pass"`
	Cursor       string `dynamodbav:"cursor"`
	Merchants    int64  `dynamodbav:"merchants"`
	StartedAt    string `dynamodbav:"started_at"`
	UpdatedAt    string `dynamodbav:"updated_at"`
	FinishedAt   string `dynamodbav:"finished_at,omitempty"`
}

// gsiRow is what settlement reads of a charge or refund in gsi1.
type gsiRow struct {
	GSI1SK   string `dynamodbav:"gsi1sk"`
	Amount   int64  `dynamodbav:"amount"`
	Currency string `dynamodbav:"currency"`
	Status   string `dynamodbav:"status"`
}

// Result is one merchant's settled day.
type Result struct {
	SettlementID string
	MerchantID   string
	Market       string
	Currency     string
	BusinessDate string
	ChargesCount int64
	ChargesTotal int64
	RefundsCount int64
	RefundsTotal int64
	Net          int64
	At           time.Time
	Replayed     bool // settled before: the stored record
	Empty        bool // nothing moved that day: no record written
}

// Completed is the result as the payload of settlement.completed.
func (r Result) Completed() events.SettlementCompleted {
	return events.SettlementCompleted{
		SettlementID: r.SettlementID, MerchantID: r.MerchantID, Market: r.Market, Currency: r.Currency,
		BusinessDate: r.BusinessDate, ChargesCount: r.ChargesCount, ChargesTotal: r.ChargesTotal,
		RefundsCount: r.RefundsCount, RefundsTotal: r.RefundsTotal, Net: r.Net, At: r.At.UTC(),
	}
}

func (it settlementItem) result() Result {
	at, _ := time.Parse(time.RFC3339Nano, it.SettledAt)
	return Result{SettlementID: it.SettlementID, MerchantID: it.MerchantID, Market: it.Market,
		Currency: it.Currency, BusinessDate: it.BusinessDate, ChargesCount: it.ChargesCount,
		ChargesTotal: it.ChargesTotal, RefundsCount: it.RefundsCount, RefundsTotal: it.RefundsTotal,
		Net: it.Net, At: at}
}

// SettlementID names a merchant's settled day in a currency, unique across
// markets (a merchant may sell in several) and at most 64 characters of the
// schema's id alphabet: S-<merchant>-<date>-<currency>, with the merchant id
// replaced by a hash of it when it would not fit.
func SettlementID(merchantID, date, currency string) string {
	id := "S-" + merchantID + "-" + date + "-" + currency
	if len(id) <= settlementIDBytesMax {
		return id
	}
	h := sha256.Sum256([]byte(merchantID))
	return "S-" + hex.EncodeToString(h[:16]) + "-" + date + "-" + currency
}

func str(v string) *types.AttributeValueMemberS { return &types.AttributeValueMemberS{Value: v} }

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{tabledef.PartitionKey: str(pk), tabledef.SortKey: str(sk)}
}

func settlementKey(merchantID, date, currency string) map[string]types.AttributeValue {
	return key(settlementPrefix+merchantID+"#"+date, currency)
}

func progressKey(merchantID, date, currency string) map[string]types.AttributeValue {
	return key(settlementPrefix+merchantID+"#"+date, progressSKPrefix+currency)
}

func runKey(marketCode, date string) map[string]types.AttributeValue {
	return key(runPrefix+marketCode+"#"+date, runSK)
}

func merchantBalanceKey(merchantID, currency string) map[string]types.AttributeValue {
	return key(merchantBalancePrefix+merchantID, balanceSKPrefix+currency)
}

// PreviousDate is the local date before t's in m's zone: the business day a
// tick at t settles by default.
func PreviousDate(m market.Market, t time.Time) string {
	local := t.In(m.Location)
	y, mo, d := local.Date()
	return time.Date(y, mo, d-1, 12, 0, 0, 0, m.Location).Format(time.DateOnly)
}

// CheckClosed returns nil if date is a valid local date of m whose day ended
// at least CloseGraceMs before now. Settling a day that is still open would
// pay out a part of it and leave the rest of its charges unsettled forever.
func CheckClosed(m market.Market, date string, now time.Time) error {
	start, err := time.ParseInLocation(time.DateOnly, date, m.Location)
	if err != nil || start.Format(time.DateOnly) != date {
		return fault.Permanentf(ReasonBadDate, "business date %.16q is not YYYY-MM-DD", date)
	}
	y, mo, d := start.Date()
	end := time.Date(y, mo, d+1, 0, 0, 0, 0, m.Location)
	if closes := end.Add(CloseGraceMs * time.Millisecond); now.Before(closes) {
		return fault.Permanentf(ReasonDayOpen, "%s %s can be settled from %s", m.Code, date, closes.Format(time.RFC3339))
	}
	return nil
}

// addChecked adds two non-negative sums; overflowing int64 would need 9.2
// million million-rupee charges on one merchant-day, but money is not the
// place to assume.
func addChecked(a, b int64) (int64, error) {
	if b < 0 || a > math.MaxInt64-b {
		return 0, fault.Permanentf(ReasonOverflow, "settlement sum out of range")
	}
	return a + b, nil
}

// SettleMerchant settles merchantID's local day date in market m, or
// replays the settlement already written. done is false when the deadline
// (zero: none) came before the totals were complete; the partial sums are
// then saved and the next call resumes from them.
func (s *Store) SettleMerchant(ctx context.Context, m market.Market, date, merchantID string, deadline time.Time) (Result, bool, error) {
	cur := string(m.Currency)
	if res, ok, err := s.getSettlement(ctx, merchantID, date, cur); err != nil || ok {
		return res, err == nil, err
	}
	p, err := s.loadProgress(ctx, merchantID, date, cur)
	if err != nil {
		return Result{}, false, err
	}
	proj := expression.NamesList(expression.Name("gsi1sk"), expression.Name("amount"),
		expression.Name("currency"), expression.Name("status"))
	pagesSinceSave := 0
	for p.Shard < ledger.MerchantDayShards {
		gsiPK := ledger.MerchantDayShard(merchantID, date, p.Shard)
		expr, err := expression.NewBuilder().
			WithKeyCondition(expression.Key(tabledef.GSI1PK).Equal(expression.Value(gsiPK))).
			WithProjection(proj).Build()
		if err != nil {
			panic(err)
		}
		in := &dynamodb.QueryInput{
			TableName: aws.String(s.table), IndexName: aws.String(tabledef.GSI1),
			KeyConditionExpression: expr.KeyCondition(), ProjectionExpression: expr.Projection(),
			ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
			Limit: aws.Int32(s.pageItems),
		}
		if p.LastPK != "" {
			in.ExclusiveStartKey = map[string]types.AttributeValue{
				tabledef.GSI1PK: str(gsiPK), tabledef.GSI1SK: str(p.LastGSI1SK),
				tabledef.PartitionKey: str(p.LastPK), tabledef.SortKey: str(p.LastSK),
			}
		}
		out, err := s.db.Query(ctx, in)
		if err != nil {
			return Result{}, false, table.Classify(err)
		}
		var rows []gsiRow
		if err := attributevalue.UnmarshalListOfMaps(out.Items, &rows); err != nil {
			return Result{}, false, fault.Transient("corrupt_item", err)
		}
		for _, r := range rows {
			// The GSI is keyed by merchant, not market: a merchant selling
			// in two markets has both currencies here, each settled by
			// its own market's run. Only succeeded money is indexed.
			if r.Currency != cur || r.Status != ledger.ChargeSucceeded {
				continue
			}
			switch {
			case strings.HasPrefix(r.GSI1SK, chargeSKPrefix):
				p.ChargesCount++
				if p.ChargesTotal, err = addChecked(p.ChargesTotal, r.Amount); err != nil {
					return Result{}, false, err
				}
			case strings.HasPrefix(r.GSI1SK, refundSKPrefix):
				p.RefundsCount++
				if p.RefundsTotal, err = addChecked(p.RefundsTotal, r.Amount); err != nil {
					return Result{}, false, err
				}
			}
		}
		p.Pages++
		pagesSinceSave++
		if lek := out.LastEvaluatedKey; len(lek) > 0 {
			p.LastGSI1SK, p.LastPK, p.LastSK = attrString(lek, tabledef.GSI1SK), attrString(lek, tabledef.PartitionKey), attrString(lek, tabledef.SortKey)
			if p.LastPK == "" {
				return Result{}, false, fault.Transient("corrupt_page_key", errors.New("query page key without pk"))
			}
		} else {
			p.Shard++
			p.LastGSI1SK, p.LastPK, p.LastSK = "", "", ""
		}
		if p.Shard >= ledger.MerchantDayShards {
			break // complete: the settlement transaction drops the partial sums
		}
		late := !deadline.IsZero() && !s.now().Before(deadline)
		if late || pagesSinceSave >= s.checkpointPages {
			if err := s.saveProgress(ctx, p); err != nil {
				return Result{}, false, err
			}
			pagesSinceSave = 0
			if late {
				return Result{}, false, nil
			}
		}
	}
	net := p.ChargesTotal - p.RefundsTotal // both in [0, MaxInt64]: cannot overflow
	res := Result{
		SettlementID: SettlementID(merchantID, date, cur), MerchantID: merchantID, Market: m.Code,
		Currency: cur, BusinessDate: date, ChargesCount: p.ChargesCount, ChargesTotal: p.ChargesTotal,
		RefundsCount: p.RefundsCount, RefundsTotal: p.RefundsTotal, Net: net, At: s.now().UTC(),
	}
	if p.ChargesCount == 0 && p.RefundsCount == 0 {
		// Indexed but nothing moved (every charge declined, say): no
		// record, no credit, no event. A re-run finds nothing again.
		res.Empty = true
		return res, true, nil
	}
	res, err = s.commit(ctx, res)
	return res, err == nil, err
}

func attrString(m map[string]types.AttributeValue, name string) string {
	if v, ok := m[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

// commit writes the settlement record and moves the net into the
// merchant's balance, in one transaction, and drops the partial sums.
func (s *Store) commit(ctx context.Context, res Result) (Result, error) {
	k := settlementKey(res.MerchantID, res.BusinessDate, res.Currency)
	it := settlementItem{
		PK: attrString(k, tabledef.PartitionKey), SK: attrString(k, tabledef.SortKey), Kind: KindSettlement,
		SettlementID: res.SettlementID, MerchantID: res.MerchantID, Market: res.Market,
		Currency: res.Currency, BusinessDate: res.BusinessDate, ChargesCount: res.ChargesCount,
		ChargesTotal: res.ChargesTotal, RefundsCount: res.RefundsCount, RefundsTotal: res.RefundsTotal,
		Net: res.Net, SettledAt: res.At.Format(time.RFC3339Nano),
	}
	item, err := attributevalue.MarshalMap(it)
	if err != nil {
		panic(fmt.Sprintf("marshal settlement: %v", err)) // a struct we own always marshals
	}
	once, err := expression.NewBuilder().
		WithCondition(expression.AttributeNotExists(expression.Name(tabledef.PartitionKey))).Build()
	if err != nil {
		panic(err)
	}
	// The net may be negative (refunds of earlier days above today's
	// sales): the merchant then owes it, and the balance shows the debt
	// rather than the settlement refusing a fact that already happened.
	// The audit reports a negative merchant balance.
	zero := expression.Value(0)
	credit, err := expression.NewBuilder().WithUpdate(expression.
		Set(expression.Name("balance"), expression.Plus(expression.Name("balance").IfNotExists(zero), expression.Value(res.Net))).
		Set(expression.Name("version"), expression.Plus(expression.Name("version").IfNotExists(zero), expression.Value(1))).
		Set(expression.Name("kind"), expression.Value(KindMerchantBalance)).
		Set(expression.Name("merchant_id"), expression.Value(res.MerchantID)).
		Set(expression.Name("currency"), expression.Value(res.Currency)).
		Set(expression.Name("last_settlement_id"), expression.Value(res.SettlementID)).
		Set(expression.Name("updated_at"), expression.Value(it.SettledAt))).
		Build()
	if err != nil {
		panic(err)
	}
	_, err = s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		TransactItems: []types.TransactWriteItem{
			{Put: &types.Put{
				TableName: aws.String(s.table), Item: item,
				ConditionExpression: once.Condition(), ExpressionAttributeNames: once.Names(),
				ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
			}},
			{Update: &types.Update{
				TableName: aws.String(s.table), Key: merchantBalanceKey(res.MerchantID, res.Currency),
				UpdateExpression: credit.Update(), ExpressionAttributeNames: credit.Names(),
				ExpressionAttributeValues: credit.Values(),
			}},
			{Delete: &types.Delete{
				TableName: aws.String(s.table), Key: progressKey(res.MerchantID, res.BusinessDate, res.Currency),
			}},
		},
	})
	if err == nil {
		return res, nil
	}
	if reasons, ok := table.CancellationReasons(err); ok && table.ConditionFailedAt(reasons, 0) {
		// Settled meanwhile by another runner: its record is the truth.
		if old := reasons[0].Item; len(old) > 0 {
			var prev settlementItem
			if err := attributevalue.UnmarshalMap(old, &prev); err != nil {
				return Result{}, fault.Transient("corrupt_settlement", err)
			}
			r := prev.result()
			r.Replayed = true
			return r, nil
		}
		r, ok, err := s.getSettlement(ctx, res.MerchantID, res.BusinessDate, res.Currency)
		if err == nil && !ok {
			err = fault.Transient("settlement_vanished", errors.New("condition failed but no settlement"))
		}
		return r, err
	}
	return Result{}, table.Classify(err)
}

func (s *Store) getSettlement(ctx context.Context, merchantID, date, currency string) (Result, bool, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.table), Key: settlementKey(merchantID, date, currency), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return Result{}, false, table.Classify(err)
	}
	if len(out.Item) == 0 {
		return Result{}, false, nil
	}
	var it settlementItem
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return Result{}, false, fault.Transient("corrupt_settlement", err)
	}
	r := it.result()
	r.Replayed = true
	return r, true, nil
}

// GetSettlement reads a merchant's settled day; ok is false if there is none.
func (s *Store) GetSettlement(ctx context.Context, merchantID, date string, currency string) (Result, bool, error) {
	return s.getSettlement(ctx, merchantID, date, currency)
}

func (s *Store) loadProgress(ctx context.Context, merchantID, date, currency string) (progressItem, error) {
	k := progressKey(merchantID, date, currency)
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: k, ConsistentRead: aws.Bool(true)})
	if err != nil {
		return progressItem{}, table.Classify(err)
	}
	p := progressItem{PK: attrString(k, tabledef.PartitionKey), SK: attrString(k, tabledef.SortKey), Kind: KindProgress}
	if len(out.Item) == 0 {
		return p, nil
	}
	if err := attributevalue.UnmarshalMap(out.Item, &p); err != nil {
		return progressItem{}, fault.Transient("corrupt_progress", err)
	}
	if p.Shard < 0 || p.Shard > ledger.MerchantDayShards {
		return progressItem{}, fault.Transient("corrupt_progress", fmt.Errorf("shard %d", p.Shard))
	}
	return p, nil
}

// saveProgress writes the partial sums whole. Two runners of one
// merchant-day may overwrite each other's saves; each save is consistent
// in itself (sums up to its own cursor), so a resume from either is right.
func (s *Store) saveProgress(ctx context.Context, p progressItem) error {
	p.UpdatedAt = s.now().UTC().Format(time.RFC3339Nano)
	item, err := attributevalue.MarshalMap(p)
	if err != nil {
		panic(fmt.Sprintf("marshal progress: %v", err))
	}
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: item})
	return table.Classify(err)
}

// MerchantBalance reads a merchant's settled balance in a currency (0 and
// false when it was never settled).
func (s *Store) MerchantBalance(ctx context.Context, merchantID, currency string) (int64, bool, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.table), Key: merchantBalanceKey(merchantID, currency), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return 0, false, table.Classify(err)
	}
	if len(out.Item) == 0 {
		return 0, false, nil
	}
	var b struct {
		Balance int64 `dynamodbav:"balance"`
	}
	if err := attributevalue.UnmarshalMap(out.Item, &b); err != nil {
		return 0, false, fault.Transient("corrupt_merchant_balance", err)
	}
	return b.Balance, true, nil
}

// RunOptions say how far a run goes.
type RunOptions struct {
	// Deadline, when not zero, stops the run at the first merchant or page
	// boundary after it; the run resumes from its checkpoint next time.
	// Every call makes progress before it looks at the deadline.
	Deadline time.Time
	// Restart makes a run that is done start a new pass over the day (the
	// operator's re-run): settled merchants replay, merchants missed before
	// are settled. Without it a done run is left alone (a second tick).
	Restart bool
	// OnMerchant is called for every merchant settled or replayed in this
	// call (not for empty ones), before the run's cursor moves past it: an
	// error stops the run there, and the next run calls it again for that
	// merchant (settle.Handler publishes settlement.completed here). It is
	// called from several goroutines at once.
	OnMerchant func(ctx context.Context, r Result) error
}

// RunOutcome is what one call of Run did.
type RunOutcome struct {
	Market, BusinessDate string
	Pass                 int64
	Done                 bool   // every merchant of the day is settled
	AlreadyDone          bool   // the run was done before this call
	Cursor               string // last merchant passed, "<shard>#<merchant>"
	Merchants            int64  // merchants passed in this pass, all calls
	Settled              int    // settlements written by this call
	Replayed             int    // settlements found already written
	Empty                int    // merchants with nothing to settle
}

// Run settles every merchant indexed as active on market m's local day
// date, resuming where an earlier call stopped. The caller checks the day
// is closed (CheckClosed).
//
// Merchants are read a page of the index at a time and settled
// settleParallel at once: a merchant costs ~36 round trips (its settlement,
// its partial sums, one query per GSI shard, the transaction), so one at a
// time a market-day of 100,000 merchants would take hours. The cursor then
// moves once per page past the longest prefix of merchants that are
// settled and reported, which keeps it monotonic and exact.
func (s *Store) Run(ctx context.Context, m market.Market, date string, opts RunOptions) (RunOutcome, error) {
	out := RunOutcome{Market: m.Code, BusinessDate: date}
	run, err := s.startRun(ctx, m, date, opts.Restart)
	if err != nil {
		return out, err
	}
	out.Pass, out.Cursor, out.Merchants = run.Pass, run.Cursor, run.Merchants
	if run.Status == RunDone {
		out.Done, out.AlreadyDone = true, true
		return out, nil
	}
	shard, after, err := parseCursor(run.Cursor)
	if err != nil {
		return out, err
	}
	first := true
	for ; shard < ledger.ActiveMerchantShards; shard, after = shard+1, "" {
		var start map[string]types.AttributeValue
		for {
			merchants, next, err := s.activeMerchants(ctx, m.Code, date, shard, after, start)
			if err != nil {
				return out, err
			}
			steps := s.settlePage(ctx, m, date, merchants, opts, first)
			first = first && len(merchants) == 0
			passed := 0
			var stop error
			for _, st := range steps {
				if st.err != nil {
					stop = st.err
					break
				}
				if !st.done {
					break
				}
				switch {
				case st.res.Empty:
					out.Empty++
				case st.res.Replayed:
					out.Replayed++
				default:
					out.Settled++
				}
				passed++
			}
			if passed > 0 {
				cursor := fmt.Sprintf("%02d#%s", shard, merchants[passed-1])
				if err := s.advance(ctx, m.Code, date, run.Pass, cursor, passed); err != nil {
					return out, err
				}
				out.Cursor = cursor
				out.Merchants += int64(passed)
			}
			if stop != nil || passed < len(merchants) {
				return out, stop // stopped by an error or the deadline
			}
			if len(next) == 0 {
				break
			}
			start, after = next, ""
		}
	}
	if err := s.finish(ctx, m.Code, date, run.Pass); err != nil {
		return out, err
	}
	out.Done = true
	return out, nil
}

// settleParallel bounds the merchants settled at once by one run: enough to
// hide round-trip latency, few enough that one run stays a small share of
// the table's capacity at the hour other markets are at their peak.
const settleParallel = 16

type step struct {
	res  Result
	done bool
	err  error
}

// settlePage settles a page of merchants, settleParallel at a time, and
// reports each. Past the deadline merchants are not started, except the
// page's first when it is the call's first, so that every call progresses.
func (s *Store) settlePage(ctx context.Context, m market.Market, date string, merchants []string, opts RunOptions, first bool) []step {
	steps := make([]step, len(merchants))
	sem := make(chan struct{}, settleParallel)
	var wg sync.WaitGroup
	for i, merchant := range merchants {
		if !(first && i == 0) && !opts.Deadline.IsZero() && !s.now().Before(opts.Deadline) {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			res, done, err := s.SettleMerchant(ctx, m, date, merchant, opts.Deadline)
			if err != nil {
				err = fmt.Errorf("settle %s %s %s: %w", m.Code, date, merchant, err)
			} else if done && !res.Empty && opts.OnMerchant != nil {
				err = opts.OnMerchant(ctx, res)
			}
			steps[i] = step{res: res, done: done && err == nil, err: err}
		}()
	}
	wg.Wait()
	return steps
}

// parseCursor splits "<shard>#<merchant>" ("" is the start of shard 0).
func parseCursor(c string) (int, string, error) {
	if c == "" {
		return 0, "", nil
	}
	sh, merchant, ok := strings.Cut(c, "#")
	n, err := strconv.Atoi(sh)
	if !ok || err != nil || n < 0 || n >= ledger.ActiveMerchantShards || merchant == "" {
		return 0, "", fault.Transient("corrupt_run", fmt.Errorf("cursor %.80q", c))
	}
	return n, merchant, nil
}

// activeMerchants reads one page of a shard of the merchant-day index,
// after merchant `after` (when start is nil) or from start.
func (s *Store) activeMerchants(ctx context.Context, marketCode, date string, shard int, after string, start map[string]types.AttributeValue) ([]string, map[string]types.AttributeValue, error) {
	pk := ledger.ActiveMerchantsPK(marketCode, date, shard)
	expr, err := expression.NewBuilder().
		WithKeyCondition(expression.Key(tabledef.PartitionKey).Equal(expression.Value(pk))).
		WithProjection(expression.NamesList(expression.Name(tabledef.SortKey))).Build()
	if err != nil {
		panic(err)
	}
	if start == nil && after != "" {
		start = key(pk, after)
	}
	out, err := s.db.Query(ctx, &dynamodb.QueryInput{
		TableName: aws.String(s.table), KeyConditionExpression: expr.KeyCondition(),
		ProjectionExpression: expr.Projection(), ExpressionAttributeNames: expr.Names(),
		ExpressionAttributeValues: expr.Values(), ExclusiveStartKey: start,
		ConsistentRead: aws.Bool(true), Limit: aws.Int32(markersPageItems),
	})
	if err != nil {
		return nil, nil, table.Classify(err)
	}
	merchants := make([]string, 0, len(out.Items))
	for _, it := range out.Items {
		if m := attrString(it, tabledef.SortKey); m != "" {
			merchants = append(merchants, m)
		}
	}
	return merchants, out.LastEvaluatedKey, nil
}

func (s *Store) getRun(ctx context.Context, marketCode, date string) (runItem, bool, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.table), Key: runKey(marketCode, date), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return runItem{}, false, table.Classify(err)
	}
	if len(out.Item) == 0 {
		return runItem{}, false, nil
	}
	var r runItem
	if err := attributevalue.UnmarshalMap(out.Item, &r); err != nil {
		return runItem{}, false, fault.Transient("corrupt_run", err)
	}
	return r, true, nil
}

// startRun returns the run of a market-day, creating it, or starting a
// new pass of a done one when restart is set.
func (s *Store) startRun(ctx context.Context, m market.Market, date string, restart bool) (runItem, error) {
	r, ok, err := s.getRun(ctx, m.Code, date)
	if err != nil {
		return runItem{}, err
	}
	now := s.now().UTC().Format(time.RFC3339Nano)
	if !ok {
		k := runKey(m.Code, date)
		r = runItem{PK: attrString(k, tabledef.PartitionKey), SK: runSK, Kind: KindRun, Market: m.Code,
			BusinessDate: date, Status: RunRunning, Pass: 1, StartedAt: now, UpdatedAt: now}
		item, err := attributevalue.MarshalMap(r)
		if err != nil {
			panic(err)
		}
		cond, err := expression.NewBuilder().
			WithCondition(expression.AttributeNotExists(expression.Name(tabledef.PartitionKey))).Build()
		if err != nil {
			panic(err)
		}
		_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: item,
			ConditionExpression: cond.Condition(), ExpressionAttributeNames: cond.Names()})
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			return s.startRun(ctx, m, date, restart) // created meanwhile: read it
		}
		if err != nil {
			return runItem{}, table.Classify(err)
		}
		return r, nil
	}
	if r.Status != RunDone || !restart {
		return r, nil
	}
	upd, err := expression.NewBuilder().
		WithCondition(expression.And(
			expression.Name("status").Equal(expression.Value(RunDone)),
			expression.Name("pass").Equal(expression.Value(r.Pass)))).
		WithUpdate(expression.
			Set(expression.Name("status"), expression.Value(RunRunning)).
			Set(expression.Name("pass"), expression.Value(r.Pass+1)).
			Set(expression.Name("cursor"), expression.Value("")).
			Set(expression.Name("merchants"), expression.Value(0)).
			Set(expression.Name("started_at"), expression.Value(now)).
			Set(expression.Name("updated_at"), expression.Value(now)).
			Remove(expression.Name("finished_at"))).
		Build()
	if err != nil {
		panic(err)
	}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: runKey(m.Code, date),
		ConditionExpression: upd.Condition(), UpdateExpression: upd.Update(),
		ExpressionAttributeNames: upd.Names(), ExpressionAttributeValues: upd.Values(),
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		// Someone restarted it first: join their pass.
		r, _, err = s.getRun(ctx, m.Code, date)
		return r, err
	}
	if err != nil {
		return runItem{}, table.Classify(err)
	}
	r.Status, r.Pass, r.Cursor, r.Merchants = RunRunning, r.Pass+1, "", 0
	return r, nil
}

// advance moves the run's cursor past `passed` more merchants. The
// condition keeps the cursor monotonic within a pass: a runner behind
// another one changes nothing (its merchants were passed already). Two
// runners overlapping on one page can count some merchants twice in
// Merchants, which is a statistic, never money.
func (s *Store) advance(ctx context.Context, marketCode, date string, pass int64, cursor string, passed int) error {
	upd, err := expression.NewBuilder().
		WithCondition(expression.And(
			expression.Name("pass").Equal(expression.Value(pass)),
			expression.Name("status").Equal(expression.Value(RunRunning)),
			expression.Name("cursor").LessThan(expression.Value(cursor)))).
		WithUpdate(expression.
			Set(expression.Name("cursor"), expression.Value(cursor)).
			Set(expression.Name("merchants"), expression.Name("merchants").Plus(expression.Value(passed))).
			Set(expression.Name("updated_at"), expression.Value(s.now().UTC().Format(time.RFC3339Nano)))).
		Build()
	if err != nil {
		panic(err)
	}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: runKey(marketCode, date),
		ConditionExpression: upd.Condition(), UpdateExpression: upd.Update(),
		ExpressionAttributeNames: upd.Names(), ExpressionAttributeValues: upd.Values(),
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return nil
	}
	return table.Classify(err)
}

func (s *Store) finish(ctx context.Context, marketCode, date string, pass int64) error {
	now := s.now().UTC().Format(time.RFC3339Nano)
	upd, err := expression.NewBuilder().
		WithCondition(expression.And(
			expression.Name("pass").Equal(expression.Value(pass)),
			expression.Name("status").Equal(expression.Value(RunRunning)))).
		WithUpdate(expression.
			Set(expression.Name("status"), expression.Value(RunDone)).
			Set(expression.Name("finished_at"), expression.Value(now)).
			Set(expression.Name("updated_at"), expression.Value(now))).
		Build()
	if err != nil {
		panic(err)
	}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: runKey(marketCode, date),
		ConditionExpression: upd.Condition(), UpdateExpression: upd.Update(),
		ExpressionAttributeNames: upd.Names(), ExpressionAttributeValues: upd.Values(),
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return nil // finished (or restarted) by another runner
	}
	return table.Classify(err)
}
