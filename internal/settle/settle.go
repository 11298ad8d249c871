// Package settle pays merchants: for a market's closed local day it moves
// every unit of money not yet settled (a succeeded charge or refund, dated
// that day or earlier) into its merchant's balance, exactly once, whatever
// order the units arrive in.
//
// Items it owns:
//
//	S#<merchant>#<date>  / <currency>            a merchant's settlement of a run day
//	SN#<market>#<date>#<nn> / <merchant>#<currency> outbox: a settlement whose latest version is not announced yet
//	SR#<market>#<date>   / RUN                   the run over a market-day: pass, shard reached
//	MW#<merchant>        / BAL#<currency>        the merchant's settled balance
//
// A settlement also carries a gsi1 entry SL#<market>#<date>#<nn>, so that a
// market-day's settlements can be listed (list.go).
//
// and it marks the ledger's units settled (ledger/unsettled.go).
//
// Why it is exact (docs/architecture.md, "Settlement"): a unit is settled by a
// transaction that marks the unit itself (on condition that it is still in
// the unsettled index under the key it was read with), adds it to the
// settlement record and adds it to the merchant's balance. The condition makes
// "settled" a fact of the unit, not of a day: two runs, a retried
// transaction or a stale index row can settle a unit at most once, and a unit
// the index does not show yet (GSI lag, a charge that committed after
// midnight with the date before, a refund of a settled charge, a pod whose
// clock is behind) is still unsettled when the next run comes, which takes it
// as a late unit of its own day's settlement. Nothing is ever decided from a
// total read at one moment, so no moment can be too early.
//
// Merchants are credited only here, never per charge (DESIGN.md: a merchant
// taking thousands of charges a second would be one hot item).
package settle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
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
	KindOutbox          = "settlement_outbox"
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
	outboxPrefix          = "SN#"
	runPrefix             = "SR#"
	runSK                 = "RUN"
	merchantBalancePrefix = "MW#"
	balanceSKPrefix       = "BAL#"

	// PageItemsDefault is the Limit of one page of the unsettled index.
	PageItemsDefault = 1000
	// OutboxShards spreads a market-day's outbox over this many partitions:
	// a run writes one entry per merchant batch, 100,000 merchants in a
	// few minutes, above one partition's ~1,000 writes/s.
	OutboxShards = 16
	// outboxPageItems is the Limit of one page of the outbox.
	outboxPageItems = 500

	// CloseGraceMs is how long after local midnight a day may be settled.
	// It is no longer what makes settlement exact (a unit that lands later
	// is settled by the next run, see the package comment); it keeps the
	// day's own settlement complete in the common case, so late units stay
	// rare. The PingSources fire at 00:05.
	CloseGraceMs = 60_000

	// batchAttemptsMax bounds the rounds of one batch against transaction
	// conflicts and throttling; past it the run stops and is retried.
	batchAttemptsMax  = 8
	batchBackoffMsMax = 200

	// settlementIDBytesMax is the schema's id limit.
	settlementIDBytesMax = 64
)

// DB is the part of the DynamoDB API settle uses; *dynamodb.Client
// satisfies it.
type DB interface {
	ledger.DB
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
}

var _ DB = (*dynamodb.Client)(nil)

// Options tune a Store; the zero value takes the defaults.
type Options struct {
	Now       func() time.Time
	PageItems int32 // unsettled-index page size (tests make it tiny)
}

// Store settles on one table.
type Store struct {
	db        DB
	table     string
	ledger    *ledger.Store
	now       func() time.Time
	pageItems int32
}

// New returns a settlement store on table.
func New(db DB, tableName string, opts Options) *Store {
	if db == nil || tableName == "" {
		panic("settle.New: db and table are required")
	}
	if opts.PageItems < 0 {
		panic("settle.New: negative page size")
	}
	s := &Store{db: db, table: tableName, now: opts.Now, pageItems: opts.PageItems}
	if s.now == nil {
		s.now = time.Now
	}
	if s.pageItems == 0 {
		s.pageItems = PageItemsDefault
	}
	s.ledger = ledger.New(db, tableName, s.now)
	return s
}

// settlementItem is one merchant's settlement of a run day in one currency:
// every unit settled into it, those dated before the run day counted again
// in the late sums. Version counts the batches that added to it.
type settlementItem struct {
	PK               string `dynamodbav:"pk"`
	SK               string `dynamodbav:"sk"`
	Kind             string `dynamodbav:"kind"`
	SettlementID     string `dynamodbav:"settlement_id"`
	MerchantID       string `dynamodbav:"merchant_id"`
	Market           string `dynamodbav:"market"`
	Currency         string `dynamodbav:"currency"`
	BusinessDate     string `dynamodbav:"business_date"`
	ChargesCount     int64  `dynamodbav:"charges_count"`
	ChargesTotal     int64  `dynamodbav:"charges_total"`
	RefundsCount     int64  `dynamodbav:"refunds_count"`
	RefundsTotal     int64  `dynamodbav:"refunds_total"`
	LateChargesCount int64  `dynamodbav:"late_charges_count"`
	LateChargesTotal int64  `dynamodbav:"late_charges_total"`
	LateRefundsCount int64  `dynamodbav:"late_refunds_count"`
	LateRefundsTotal int64  `dynamodbav:"late_refunds_total"`
	Net              int64  `dynamodbav:"net"`
	Version          int64  `dynamodbav:"version"`
	SettledAt        string `dynamodbav:"settled_at"`
	UpdatedAt        string `dynamodbav:"updated_at"`
}

// Result is one merchant's settlement, as of one version.
type Result struct {
	SettlementID     string
	MerchantID       string
	Market           string
	Currency         string
	BusinessDate     string
	ChargesCount     int64
	ChargesTotal     int64
	RefundsCount     int64
	RefundsTotal     int64
	LateChargesCount int64
	LateChargesTotal int64
	LateRefundsCount int64
	LateRefundsTotal int64
	Net              int64
	Version          int64
	At               time.Time // when this version was written
}

// Completed is the result as the payload of settlement.completed.
func (r Result) Completed() events.SettlementCompleted {
	return events.SettlementCompleted{
		SettlementID: r.SettlementID, MerchantID: r.MerchantID, Market: r.Market, Currency: r.Currency,
		BusinessDate: r.BusinessDate, ChargesCount: r.ChargesCount, ChargesTotal: r.ChargesTotal,
		RefundsCount: r.RefundsCount, RefundsTotal: r.RefundsTotal,
		LateChargesCount: r.LateChargesCount, LateChargesTotal: r.LateChargesTotal,
		LateRefundsCount: r.LateRefundsCount, LateRefundsTotal: r.LateRefundsTotal,
		Net: r.Net, Version: r.Version, At: r.At.UTC(),
	}
}

func (it settlementItem) result() Result {
	at, _ := time.Parse(time.RFC3339Nano, it.UpdatedAt)
	return Result{SettlementID: it.SettlementID, MerchantID: it.MerchantID, Market: it.Market,
		Currency: it.Currency, BusinessDate: it.BusinessDate, ChargesCount: it.ChargesCount,
		ChargesTotal: it.ChargesTotal, RefundsCount: it.RefundsCount, RefundsTotal: it.RefundsTotal,
		LateChargesCount: it.LateChargesCount, LateChargesTotal: it.LateChargesTotal,
		LateRefundsCount: it.LateRefundsCount, LateRefundsTotal: it.LateRefundsTotal,
		Net: it.Net, Version: it.Version, At: at}
}

// SettlementID names a merchant's settlement of a run day in a currency,
// unique across markets (a merchant may sell in several) and at most 64
// characters of the schema's id alphabet: S-<merchant>-<date>-<currency>,
// with the merchant id replaced by a hash of it when it would not fit.
func SettlementID(merchantID, date, currency string) string {
	id := "S-" + merchantID + "-" + date + "-" + currency
	if len(id) <= settlementIDBytesMax {
		return id
	}
	h := sha256.Sum256([]byte(merchantID))
	return "S-" + hex.EncodeToString(h[:16]) + "-" + date + "-" + currency
}

// SettlementDate is the business date a settlement id names (the date
// part of SettlementID), and whether id has the form.
func SettlementDate(id string) (string, bool) {
	// "S-...-YYYY-MM-DD-CUR": the date is the 10 bytes before "-CUR".
	if len(id) < len("S-x-2006-01-02-IDR") || id[len(id)-4] != '-' || id[len(id)-15] != '-' {
		return "", false
	}
	date := id[len(id)-14 : len(id)-4]
	if _, err := time.Parse(time.DateOnly, date); err != nil {
		return "", false
	}
	return date, true
}

func str(v string) *types.AttributeValueMemberS { return &types.AttributeValueMemberS{Value: v} }

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{tabledef.PartitionKey: str(pk), tabledef.SortKey: str(sk)}
}

func settlementKey(merchantID, date, currency string) map[string]types.AttributeValue {
	return key(settlementPrefix+merchantID+"#"+date, currency)
}

func runKey(marketCode, date string) map[string]types.AttributeValue {
	return key(runPrefix+marketCode+"#"+date, runSK)
}

func merchantBalanceKey(merchantID, currency string) map[string]types.AttributeValue {
	return key(merchantBalancePrefix+merchantID, balanceSKPrefix+currency)
}

func outboxPK(marketCode, date string, shard int) string {
	if shard < 0 || shard >= OutboxShards {
		panic(fmt.Sprintf("settle: outbox shard %d out of range", shard))
	}
	return fmt.Sprintf("%s%s#%s#%02d", outboxPrefix, marketCode, date, shard)
}

func outboxKey(marketCode, date, merchantID, currency string) map[string]types.AttributeValue {
	h := sha256.Sum256([]byte(merchantID))
	return key(outboxPK(marketCode, date, int(h[0])%OutboxShards), merchantID+"#"+currency)
}

func attrString(m map[string]types.AttributeValue, name string) string {
	if v, ok := m[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
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
// take its units as they come in, a few per run; closed, a run takes the day
// whole and the units that straggle in are the exception.
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
// million million-rupee charges in one batch, but money is not the place to
// assume.
func addChecked(a, b int64) (int64, error) {
	if b < 0 || a > math.MaxInt64-b {
		return 0, fault.Permanentf(ReasonOverflow, "settlement sum out of range")
	}
	return a + b, nil
}

// batchSums are what one batch adds to a settlement.
type batchSums struct {
	charges, chargesTotal, refunds, refundsTotal                 int64
	lateCharges, lateChargesTotal, lateRefunds, lateRefundsTotal int64
}

func (b batchSums) net() int64 { return b.chargesTotal - b.refundsTotal } // both in [0, MaxInt64]

func sumBatch(units []ledger.Unit, date string) (batchSums, error) {
	var b batchSums
	var err error
	for _, u := range units {
		late := u.BusinessDate < date
		switch u.Kind {
		case ledger.UnitCharge:
			b.charges++
			if b.chargesTotal, err = addChecked(b.chargesTotal, u.Amount); err != nil {
				return b, err
			}
			if late {
				b.lateCharges++
				b.lateChargesTotal += u.Amount // at most chargesTotal
			}
		case ledger.UnitRefund:
			b.refunds++
			if b.refundsTotal, err = addChecked(b.refundsTotal, u.Amount); err != nil {
				return b, err
			}
			if late {
				b.lateRefunds++
				b.lateRefundsTotal += u.Amount
			}
		default:
			panic("settle: unit of kind " + u.Kind)
		}
	}
	return b, nil
}

// settleBatch settles units (one merchant's, at most
// ledger.UnitsPerBatchMax) into the merchant's settlement of date in one
// transaction, dropping the units another run settled first. It returns how
// many units it settled.
func (s *Store) settleBatch(ctx context.Context, m market.Market, date, merchant string, units []ledger.Unit) (int, error) {
	for attempt := 0; len(units) > 0; {
		sums, err := sumBatch(units, date)
		if err != nil {
			return 0, err
		}
		at := s.now().UTC()
		sid := SettlementID(merchant, date, string(m.Currency))
		actions := append(s.ledger.MarkSettled(units, sid, at),
			s.settlementAdd(m, date, merchant, sid, sums, at),
			s.balanceAdd(merchant, string(m.Currency), sid, sums.net(), at),
			s.outboxAdd(m.Code, date, merchant, string(m.Currency), sid))
		_, err = s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: actions})
		if err == nil {
			return len(units), nil
		}
		reasons, ok := table.CancellationReasons(err)
		if !ok {
			return 0, table.Classify(err)
		}
		kept := units[:0:0]
		for i, u := range units {
			if !table.ConditionFailedAt(reasons, i) {
				kept = append(kept, u)
			}
		}
		if len(kept) < len(units) {
			units = kept // settled by another run: its transaction paid them
			continue
		}
		if attempt++; !table.CanceledRetryable(reasons) || attempt >= batchAttemptsMax {
			return 0, table.Classify(err)
		}
		if err := pause(ctx, attempt); err != nil {
			return 0, table.Classify(err)
		}
	}
	return 0, nil
}

// pause waits a jittered, growing moment between two rounds of a batch.
func pause(ctx context.Context, attempt int) error {
	ms := min(1<<min(attempt, 8), batchBackoffMsMax)
	t := time.NewTimer(time.Duration(rand.IntN(ms)+1) * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// settlementAdd adds a batch's sums to the merchant's settlement of date,
// creating it with the first batch.
func (s *Store) settlementAdd(m market.Market, date, merchant, sid string, b batchSums, at time.Time) types.TransactWriteItem {
	ts := at.Format(time.RFC3339Nano)
	v := expression.Value
	upd, err := expression.NewBuilder().WithUpdate(expression.
		Set(expression.Name("kind"), v(KindSettlement)).
		Set(expression.Name("settlement_id"), v(sid)).
		Set(expression.Name("merchant_id"), v(merchant)).
		Set(expression.Name("market"), v(m.Code)).
		Set(expression.Name("currency"), v(string(m.Currency))).
		Set(expression.Name("business_date"), v(date)).
		Set(expression.Name("settled_at"), expression.Name("settled_at").IfNotExists(v(ts))).
		Set(expression.Name("updated_at"), v(ts)).
		Set(expression.Name(tabledef.GSI1PK), v(listPK(m.Code, date, merchant))).
		Set(expression.Name(tabledef.GSI1SK), v(merchant+"#"+string(m.Currency))).
		Add(expression.Name("charges_count"), v(b.charges)).
		Add(expression.Name("charges_total"), v(b.chargesTotal)).
		Add(expression.Name("refunds_count"), v(b.refunds)).
		Add(expression.Name("refunds_total"), v(b.refundsTotal)).
		Add(expression.Name("late_charges_count"), v(b.lateCharges)).
		Add(expression.Name("late_charges_total"), v(b.lateChargesTotal)).
		Add(expression.Name("late_refunds_count"), v(b.lateRefunds)).
		Add(expression.Name("late_refunds_total"), v(b.lateRefundsTotal)).
		Add(expression.Name("net"), v(b.net())).
		Add(expression.Name("version"), v(1))).Build()
	if err != nil {
		panic(err)
	}
	return types.TransactWriteItem{Update: &types.Update{
		TableName: aws.String(s.table), Key: settlementKey(merchant, date, string(m.Currency)),
		UpdateExpression: upd.Update(), ExpressionAttributeNames: upd.Names(), ExpressionAttributeValues: upd.Values(),
	}}
}

// balanceAdd moves a batch's net into the merchant's balance. The net may
// be negative (refunds of settled charges above the batch's sales): the
// merchant then owes it, and the balance shows the debt rather than the
// settlement refusing a fact that already happened. The audit reports a
// negative merchant balance.
func (s *Store) balanceAdd(merchant, currency, sid string, net int64, at time.Time) types.TransactWriteItem {
	v := expression.Value
	upd, err := expression.NewBuilder().WithUpdate(expression.
		Add(expression.Name("balance"), v(net)).
		Add(expression.Name("version"), v(1)).
		Set(expression.Name("kind"), v(KindMerchantBalance)).
		Set(expression.Name("merchant_id"), v(merchant)).
		Set(expression.Name("currency"), v(currency)).
		Set(expression.Name("last_settlement_id"), v(sid)).
		Set(expression.Name("updated_at"), v(at.Format(time.RFC3339Nano)))).Build()
	if err != nil {
		panic(err)
	}
	return types.TransactWriteItem{Update: &types.Update{
		TableName: aws.String(s.table), Key: merchantBalanceKey(merchant, currency),
		UpdateExpression: upd.Update(), ExpressionAttributeNames: upd.Names(), ExpressionAttributeValues: upd.Values(),
	}}
}

// outboxAdd notes that the merchant's settlement has a version to announce.
// pending counts the batches; the announcer deletes the entry only if it is
// unchanged since it read the settlement, so a batch that lands meanwhile is
// announced again.
func (s *Store) outboxAdd(marketCode, date, merchant, currency, sid string) types.TransactWriteItem {
	v := expression.Value
	upd, err := expression.NewBuilder().WithUpdate(expression.
		Set(expression.Name("kind"), v(KindOutbox)).
		Set(expression.Name("merchant_id"), v(merchant)).
		Set(expression.Name("currency"), v(currency)).
		Set(expression.Name("settlement_id"), v(sid)).
		Add(expression.Name("pending"), v(1))).Build()
	if err != nil {
		panic(err)
	}
	return types.TransactWriteItem{Update: &types.Update{
		TableName: aws.String(s.table), Key: outboxKey(marketCode, date, merchant, currency),
		UpdateExpression: upd.Update(), ExpressionAttributeNames: upd.Names(), ExpressionAttributeValues: upd.Values(),
	}}
}

// GetSettlement reads a merchant's settlement of a run day; ok is false if
// there is none.
func (s *Store) GetSettlement(ctx context.Context, merchantID, date string, currency string) (Result, bool, error) {
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
	return it.result(), true, nil
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

// errStop is no error: the deadline came.
var errStop = errors.New("settle: deadline")

// settleParallel bounds the merchants settled at once by one run: enough to
// hide round-trip latency, few enough that one run stays a small share of
// the table's capacity at the hour other markets are at their peak.
const settleParallel = 16

// batcher gathers units merchant by merchant across pages and shards, so
// that a merchant whose units are spread over every shard is still settled
// in full batches: a batch costs three writes beside its units (the
// settlement, the balance, the outbox entry), whatever its size.
type batcher struct {
	market   market.Market
	date     string
	pending  map[string][]ledger.Unit
	order    []string
	buffered int
}

func newBatcher(m market.Market, date string) *batcher {
	return &batcher{market: m, date: date, pending: map[string][]ledger.Unit{}}
}

// add takes a page of units and returns the batches that are full.
func (b *batcher) add(units []ledger.Unit) ([][]ledger.Unit, error) {
	var full [][]ledger.Unit
	for _, u := range units {
		if u.Currency != string(b.market.Currency) || u.BusinessDate > b.date {
			// The index keys a unit by its currency's market and date, so
			// neither can happen but by a bug; never pay it wrongly.
			return nil, fault.Transient("corrupt_unit", fmt.Errorf("%s unit of %s in %s %s", u.Currency, u.BusinessDate, b.market.Code, b.date))
		}
		mine, ok := b.pending[u.MerchantID]
		if !ok {
			b.order = append(b.order, u.MerchantID)
		}
		mine = append(mine, u)
		b.buffered++
		if len(mine) == ledger.UnitsPerBatchMax {
			full = append(full, mine)
			b.buffered -= len(mine)
			mine = mine[:0:0]
		}
		b.pending[u.MerchantID] = mine
	}
	return full, nil
}

// drain returns every unit still pending, in batches.
func (b *batcher) drain() [][]ledger.Unit {
	var out [][]ledger.Unit
	for _, merchant := range b.order {
		if mine := b.pending[merchant]; len(mine) > 0 {
			out = append(out, mine)
		}
	}
	b.pending, b.order, b.buffered = map[string][]ledger.Unit{}, nil, 0
	return out
}

// settleBatches settles batches (each one merchant's), settleParallel at
// once, and returns the first error.
func (s *Store) settleBatches(ctx context.Context, m market.Market, date string, batches [][]ledger.Unit, out *RunOutcome) error {
	var mu sync.Mutex
	var first error
	sem := make(chan struct{}, settleParallel)
	var wg sync.WaitGroup
	for _, batch := range batches {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			merchant := batch[0].MerchantID
			settled, err := s.settleBatch(ctx, m, date, merchant, batch)
			mu.Lock()
			defer mu.Unlock()
			out.Units += settled
			out.Batches++
			if err != nil && first == nil {
				first = fmt.Errorf("settle %s %s %s: %w", m.Code, date, merchant, err)
			}
		}()
	}
	wg.Wait()
	return first
}
