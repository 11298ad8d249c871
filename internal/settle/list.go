package settle

import (
	"context"
	"crypto/sha256"
	"fmt"
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

// The settlement list: every settlement item carries a gsi1 entry
//
//	gsi1pk = SL#<market>#<date>#<nn>   16 shards by merchant, as the outbox
//	gsi1sk = <merchant>#<currency>
//
// set by the batch that writes it (settlementAdd: two more attributes on an
// item the transaction writes anyway, one GSI write per batch), so a
// market-day's settlements can be listed without knowing its merchants:
// what the payout file and its reconciliation need (internal/recon).
const (
	listPrefix = "SL#"
	// ListShards spreads a market-day's list like the outbox.
	ListShards = OutboxShards
)

func listPK(marketCode, date, merchantID string) string {
	h := sha256.Sum256([]byte(merchantID))
	return listShardPK(marketCode, date, int(h[0])%ListShards)
}

func listShardPK(marketCode, date string, shard int) string {
	if shard < 0 || shard >= ListShards {
		panic(fmt.Sprintf("settle: list shard %d out of range", shard))
	}
	return fmt.Sprintf("%s%s#%s#%02d", listPrefix, marketCode, date, shard)
}

// ListStats count the reads of one Settlements call.
type ListStats struct {
	QueryPages int
	PointReads int
}

// Settlements calls fn with every settlement of a market's business date,
// each read again with a consistent read (the index is eventually
// consistent; the figures a payout pays must not be). The list itself may
// lag a batch written a moment ago: call it on a run that is done
// (RunState), when no batch of the day is being written.
func (s *Store) Settlements(ctx context.Context, marketCode, date string, fn func(Result) error) (ListStats, error) {
	var st ListStats
	for shard := range ListShards {
		expr, err := expression.NewBuilder().WithKeyCondition(
			expression.Key(tabledef.GSI1PK).Equal(expression.Value(listShardPK(marketCode, date, shard)))).Build()
		if err != nil {
			panic(err)
		}
		var start map[string]types.AttributeValue
		for {
			page, err := s.db.Query(ctx, &dynamodb.QueryInput{
				TableName: aws.String(s.table), IndexName: aws.String(tabledef.GSI1),
				KeyConditionExpression: expr.KeyCondition(), ExpressionAttributeNames: expr.Names(),
				ExpressionAttributeValues: expr.Values(), ExclusiveStartKey: start,
			})
			if err != nil {
				return st, table.Classify(err)
			}
			st.QueryPages++
			var rows []settlementItem
			if err := attributevalue.UnmarshalListOfMaps(page.Items, &rows); err != nil {
				return st, fault.Transient("corrupt_settlement", err)
			}
			for _, row := range rows {
				r, ok, err := s.GetSettlement(ctx, row.MerchantID, date, row.Currency)
				st.PointReads++
				if err != nil {
					return st, err
				}
				if !ok {
					return st, fault.Transient("corrupt_settlement", fmt.Errorf("listed settlement %.80s vanished", row.SettlementID))
				}
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
	return st, nil
}

// RunState is a market-day's run as stored.
type RunState struct {
	Status     string // RunRunning or RunDone
	Pass       int64
	FinishedAt time.Time // zero while running
}

// GetRun reads the run of a market-day; ok is false if it never started.
func (s *Store) GetRun(ctx context.Context, marketCode, date string) (RunState, bool, error) {
	r, ok, err := s.getRun(ctx, marketCode, date)
	if err != nil || !ok {
		return RunState{}, ok, err
	}
	at, _ := time.Parse(time.RFC3339Nano, r.FinishedAt)
	return RunState{Status: r.Status, Pass: r.Pass, FinishedAt: at}, true, nil
}
