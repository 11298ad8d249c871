package ledger

import (
	"context"
	"fmt"
	"hash/fnv"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/sebelas/sebelas/internal/market"
	"github.com/sebelas/sebelas/internal/money"
	"github.com/sebelas/sebelas/internal/table"
)

// The merchant-day index tells settlement which merchants had money move on
// a market's local day: MD#<market>#<date>#<shard> / <merchant_id>.
//
// Why an index item and not something else:
//   - The charge must stay ONE TransactWriteItems of two items (DESIGN.md),
//     so the index cannot ride in the charge transaction.
//   - gsi1 is keyed by merchant (M#<merchant>#<date>#<shard>): it answers
//     "what did this merchant sell on that day", not "who sold".
//   - Scanning the table or the index for a day costs the whole history.
//
// So the ledger writes the index item BEFORE the money transaction of a
// charge or a refund, with the same local date the money item will carry.
// Written before, a crash can only leave an index item without money (the
// merchant-day settles to nothing and is skipped), never money without an
// index item, which would leave a merchant unpaid. It is an unconditional
// idempotent PutItem, and each process remembers the merchant-days it has
// written, so it costs one write per merchant-day per process, not one per
// charge: the charge path keeps its single transaction after the first sale.
const (
	merchantDayIndexPrefix = "MD#"

	// ActiveMerchantShards spreads one market-day's index over this many
	// partitions. At a market's midnight every merchant's first sale writes
	// one item per process; 100,000 merchants times a few dozen charge
	// pods in the first minutes would be far above the ~1,000 writes/s of
	// one partition, and 32 partitions take ~32,000/s. Settlement reads
	// every shard, in shard order.
	ActiveMerchantShards = 32

	// marksCachedMax bounds the per-process memory of merchant-days
	// already indexed (about 100 bytes each). When full it is cleared:
	// forgetting only costs a repeated idempotent write.
	marksCachedMax = 1 << 17
)

// KindMerchantDay is the kind attribute of an index item.
const KindMerchantDay = "merchant_day"

// merchantDayItem is one merchant's entry in a market-day's index.
type merchantDayItem struct {
	PK           string `dynamodbav:"pk"`
	SK           string `dynamodbav:"sk"`
	Kind         string `dynamodbav:"kind"`
	MerchantID   string `dynamodbav:"merchant_id"`
	Market       string `dynamodbav:"market"`
	Currency     string `dynamodbav:"currency"`
	BusinessDate string `dynamodbav:"business_date"`
}

// ActiveMerchantsPK is the partition key of one shard of the merchant-day
// index of market (ISO code) on its local date.
func ActiveMerchantsPK(marketCode, localDate string, shard int) string {
	if shard < 0 || shard >= ActiveMerchantShards {
		panic(fmt.Sprintf("ledger: active-merchant shard %d out of range", shard))
	}
	return fmt.Sprintf("%s%s#%s#%02d", merchantDayIndexPrefix, marketCode, localDate, shard)
}

// ActiveMerchantShard is the shard of the merchant-day index a merchant's
// entry lives in.
func ActiveMerchantShard(merchantID string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(merchantID))
	return int(h.Sum32() % ActiveMerchantShards)
}

// MarkMerchantDay indexes merchantID as active on localDate in the market of
// currency. Call it before the money transaction, with the local date the
// money item will carry.
func (s *Store) MarkMerchantDay(ctx context.Context, currency, merchantID, localDate string) error {
	m, err := market.ByCurrency(money.Currency(currency))
	if err != nil {
		return err
	}
	cacheKey := m.Code + "#" + localDate + "#" + merchantID
	if s.marks.has(cacheKey) {
		return nil
	}
	item, err := attributevalue.MarshalMap(merchantDayItem{
		PK:   ActiveMerchantsPK(m.Code, localDate, ActiveMerchantShard(merchantID)),
		SK:   merchantID,
		Kind: KindMerchantDay, MerchantID: merchantID, Market: m.Code,
		Currency: string(m.Currency), BusinessDate: localDate,
	})
	if err != nil {
		panic(fmt.Sprintf("marshal merchant-day item: %v", err)) // a struct we own always marshals
	}
	// Unconditional: the item's content is a function of its key, so a
	// rewrite changes nothing and needs no condition (a failed condition
	// would cost the same write capacity and an error to tell apart).
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: item}); err != nil {
		return table.Classify(err)
	}
	s.marks.add(cacheKey)
	return nil
}

// markCache is a bounded set of merchant-day keys; the zero value is ready.
type markCache struct {
	mu   sync.Mutex
	seen map[string]struct{}
}

func (c *markCache) has(k string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.seen[k]
	return ok
}

func (c *markCache) add(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil || len(c.seen) >= marksCachedMax {
		c.seen = make(map[string]struct{})
	}
	c.seen[k] = struct{}{}
}
