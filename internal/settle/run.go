package settle

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	tabledef "github.com/sebelas/sebelas/infra/dynamodb"
	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/ledger"
	"github.com/sebelas/sebelas/internal/market"
	"github.com/sebelas/sebelas/internal/table"
)

// runItem is the progress of a run over one market-day. Shard is the first
// shard of the unsettled index not yet done in this pass (ledger.UnsettledShards:
// every shard done, the outbox is being announced). It is bookkeeping that
// makes a resumed run cheap, never what makes it correct: a run that starts
// a shard again finds only what is still unsettled.
type runItem struct {
	PK           string `dynamodbav:"pk"`
	SK           string `dynamodbav:"sk"`
	Kind         string `dynamodbav:"kind"`
	Market       string `dynamodbav:"market"`
	BusinessDate string `dynamodbav:"business_date"`
	Status       string `dynamodbav:"status"`
	Pass         int64  `dynamodbav:"pass"`
	Shard        int    `dynamodbav:"shard"`
	Units        int64  `dynamodbav:"units"`
	StartedAt    string `dynamodbav:"started_at"`
	UpdatedAt    string `dynamodbav:"updated_at"`
	FinishedAt   string `dynamodbav:"finished_at,omitempty"`
}

// outboxItem is a settlement with a version not announced yet.
type outboxItem struct {
	PK         string `dynamodbav:"pk"`
	SK         string `dynamodbav:"sk"`
	MerchantID string `dynamodbav:"merchant_id"`
	Currency   string `dynamodbav:"currency"`
	Pending    int64  `dynamodbav:"pending"`
}

// RunOptions say how far a run goes.
type RunOptions struct {
	// Deadline, when not zero, stops the run at the first page boundary
	// after it; the run resumes from its shard next time. Every call
	// settles at least one page before it looks at the deadline.
	Deadline time.Time
	// Restart makes a run that is done start a new pass over the day (the
	// operator's re-run): it settles whatever is still unsettled through
	// the day, late arrivals included. Without it a done run is left alone
	// (a second tick); the next day's run takes the late units anyway.
	Restart bool
	// OnMerchant is called for every settlement that has a new version
	// (after every shard is done), before its outbox entry is removed: an
	// error stops the run there, and the next run calls it again for that
	// settlement (settle.Handler publishes settlement.completed here, with
	// an id per version). It is called from one goroutine.
	OnMerchant func(ctx context.Context, r Result) error
}

// RunOutcome is what one call of Run did.
type RunOutcome struct {
	Market, BusinessDate string
	Pass                 int64
	Done                 bool // every shard done and every new version announced
	AlreadyDone          bool // the run was done before this call
	Shard                int  // first shard not done
	Units                int  // units settled by this call
	Batches              int  // settlement transactions sent by this call
	Announced            int  // settlement versions handed to OnMerchant by this call
}

// Run settles every unit of market m dated date or earlier that is not
// settled yet, resuming where an earlier call stopped, then announces every
// settlement with a new version. The caller checks the day is closed
// (CheckClosed).
func (s *Store) Run(ctx context.Context, m market.Market, date string, opts RunOptions) (RunOutcome, error) {
	out := RunOutcome{Market: m.Code, BusinessDate: date}
	run, err := s.startRun(ctx, m, date, opts.Restart)
	if err != nil {
		return out, err
	}
	out.Pass, out.Shard = run.Pass, run.Shard
	if run.Status == RunDone {
		// Announce still: a runner that settled a batch and was killed
		// before announcing, while another finished the pass, left an entry.
		out.Done, out.AlreadyDone = true, true
		return out, s.announce(ctx, m.Code, date, opts.OnMerchant, &out)
	}
	if err := s.settleShards(ctx, m, date, run.Pass, opts.Deadline, &out); errors.Is(err, errStop) {
		return out, nil
	} else if err != nil {
		return out, err
	}
	if err := s.announce(ctx, m.Code, date, opts.OnMerchant, &out); err != nil {
		return out, err
	}
	if err := s.finish(ctx, m.Code, date, run.Pass); err != nil {
		return out, err
	}
	out.Done = true
	return out, nil
}

// settleShards reads the unsettled index shard by shard from out.Shard
// and settles what it finds in full batches per merchant. The run's shard
// moves only when nothing read is left unsettled in memory, so a resumed run
// starts where every unit before it was paid. Past the deadline it settles
// what it holds and returns errStop, except before the call's first page, so
// that every call progresses.
func (s *Store) settleShards(ctx context.Context, m market.Market, date string, pass int64, deadline time.Time, out *RunOutcome) error {
	b := newBatcher(m, date)
	flush := func(upTo int) error {
		if err := s.settleBatches(ctx, m, date, b.drain(), out); err != nil {
			return err
		}
		out.Shard = upTo
		return s.advance(ctx, m.Code, date, pass, upTo, out.Units)
	}
	first := true
	for shard := out.Shard; shard < ledger.UnsettledShards; shard++ {
		var start map[string]types.AttributeValue
		for {
			if !first && !deadline.IsZero() && !s.now().Before(deadline) {
				if err := flush(shard); err != nil {
					return err
				}
				return errStop
			}
			first = false
			page, err := s.ledger.UnsettledUnits(ctx, m.Code, shard, date, start, s.pageItems)
			if err != nil {
				return err
			}
			full, err := b.add(page.Units)
			if err != nil {
				return err
			}
			if err := s.settleBatches(ctx, m, date, full, out); err != nil {
				return err
			}
			if len(page.Next) == 0 {
				break
			}
			start = page.Next
		}
		if b.buffered >= bufferedUnitsMax {
			if err := flush(shard + 1); err != nil {
				return err
			}
		}
	}
	return flush(ledger.UnsettledShards)
}

// announce hands every settlement of the market-day's outbox to onMerchant
// and removes its entry, unless a batch added to it meanwhile (then the
// next run announces the newer version).
func (s *Store) announce(ctx context.Context, marketCode, date string, onMerchant func(context.Context, Result) error, out *RunOutcome) error {
	for shard := range OutboxShards {
		expr, err := expression.NewBuilder().WithKeyCondition(
			expression.Key(tabledef.PartitionKey).Equal(expression.Value(outboxPK(marketCode, date, shard)))).Build()
		if err != nil {
			panic(err)
		}
		var start map[string]types.AttributeValue
		for {
			page, err := s.db.Query(ctx, &dynamodb.QueryInput{
				TableName: aws.String(s.table), KeyConditionExpression: expr.KeyCondition(),
				ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
				ConsistentRead: aws.Bool(true), ExclusiveStartKey: start, Limit: aws.Int32(outboxPageItems),
			})
			if err != nil {
				return table.Classify(err)
			}
			var entries []outboxItem
			if err := attributevalue.UnmarshalListOfMaps(page.Items, &entries); err != nil {
				return fault.Transient("corrupt_outbox", err)
			}
			for _, e := range entries {
				if err := s.announceOne(ctx, date, e, onMerchant); err != nil {
					return err
				}
				out.Announced++
			}
			if len(page.LastEvaluatedKey) == 0 {
				break
			}
			start = page.LastEvaluatedKey
		}
	}
	return nil
}

func (s *Store) announceOne(ctx context.Context, date string, e outboxItem, onMerchant func(context.Context, Result) error) error {
	r, ok, err := s.GetSettlement(ctx, e.MerchantID, date, e.Currency)
	if err != nil {
		return err
	}
	if !ok {
		// Written in one transaction with its settlement: cannot be.
		return fault.Transient("corrupt_outbox", fmt.Errorf("outbox %.80s without a settlement", e.SK))
	}
	if onMerchant != nil {
		if err := onMerchant(ctx, r); err != nil {
			return err
		}
	}
	cond, err := expression.NewBuilder().WithCondition(
		expression.Name("pending").Equal(expression.Value(e.Pending))).Build()
	if err != nil {
		panic(err)
	}
	_, err = s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: aws.String(s.table), Key: key(e.PK, e.SK),
		ConditionExpression: cond.Condition(), ExpressionAttributeNames: cond.Names(),
		ExpressionAttributeValues: cond.Values(),
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return nil // a batch landed meanwhile: announced again by the next run
	}
	return table.Classify(err)
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
	if r.Shard < 0 || r.Shard > ledger.UnsettledShards {
		return runItem{}, false, fault.Transient("corrupt_run", fmt.Errorf("shard %d", r.Shard))
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
		return s.createRun(ctx, m, date, restart, now)
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
			Set(expression.Name("shard"), expression.Value(0)).
			Set(expression.Name("units"), expression.Value(0)).
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
	r.Status, r.Pass, r.Shard, r.Units = RunRunning, r.Pass+1, 0, 0
	return r, nil
}

func (s *Store) createRun(ctx context.Context, m market.Market, date string, restart bool, now string) (runItem, error) {
	k := runKey(m.Code, date)
	r := runItem{PK: attrString(k, tabledef.PartitionKey), SK: runSK, Kind: KindRun, Market: m.Code,
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

// advance moves the run past its shards below shard. The condition keeps
// the shard monotonic within a pass: a runner behind another one changes
// nothing. Units is a statistic (two runners may both count), never money.
func (s *Store) advance(ctx context.Context, marketCode, date string, pass int64, shard, units int) error {
	upd, err := expression.NewBuilder().
		WithCondition(expression.And(
			expression.Name("pass").Equal(expression.Value(pass)),
			expression.Name("status").Equal(expression.Value(RunRunning)),
			expression.Name("shard").LessThan(expression.Value(shard)))).
		WithUpdate(expression.
			Set(expression.Name("shard"), expression.Value(shard)).
			Set(expression.Name("units"), expression.Value(units)).
			Set(expression.Name("updated_at"), expression.Value(s.now().UTC().Format(time.RFC3339Nano)))).
		Build()
	if err != nil {
		panic(err)
	}
	return s.updateRun(ctx, marketCode, date, upd)
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
	return s.updateRun(ctx, marketCode, date, upd)
}

// updateRun applies a conditional update to the run; a failed condition is
// another runner ahead (or a restart), which is fine.
func (s *Store) updateRun(ctx context.Context, marketCode, date string, upd expression.Expression) error {
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
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

// bufferedUnitsMax bounds the units a run holds while it gathers full
// batches across shards (~200 bytes each: 20 MB).
const bufferedUnitsMax = 100_000

// versionID is the id suffix of one version of a settlement.
func versionID(r Result) string { return r.SettlementID + "." + strconv.FormatInt(r.Version, 10) }
