package ledger

import (
	"fmt"
	"hash/fnv"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Key prefixes. They are part of the stored format: changing one is a data
// migration, not a refactor.
const (
	walletPrefix      = "W#"
	balancePrefix     = "BAL#"
	chargePrefix      = "C#"
	chargeSK          = "C"
	conflictSKPrefix  = "X#"
	cashInPrefix      = "K#"
	cashInSK          = "K"
	merchantDayPrefix = "M#"

	// MerchantDayShards spreads one merchant's day over this many GSI
	// partitions. A flagship store at midnight can take several thousand
	// charges per second; DynamoDB caps a partition (of the table and of a
	// GSI) at about 1,000 writes per second, so 32 shards leave headroom for
	// ~30,000 charges/s on one merchant. Settlement queries every shard.
	MerchantDayShards = 32
)

// Wallet statuses.
const (
	WalletActive = "active"
	WalletFrozen = "frozen"
)

func str(v string) *types.AttributeValueMemberS { return &types.AttributeValueMemberS{Value: v} }

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": str(pk), "sk": str(sk)}
}

func walletPK(wallet string) string { return walletPrefix + wallet }

func balanceKey(wallet, currency string) map[string]types.AttributeValue {
	return key(walletPK(wallet), balancePrefix+currency)
}

func chargeKey(chargeID string) map[string]types.AttributeValue {
	return key(chargePrefix+chargeID, chargeSK)
}

func cashInKey(cashInID string) map[string]types.AttributeValue {
	return key(cashInPrefix+cashInID, cashInSK)
}

// MerchantDayShard is the GSI partition key of a charge: the merchant's local
// day, sharded by charge id so one merchant is never one hot partition.
func MerchantDayShard(merchantID, localDate string, shard int) string {
	if shard < 0 || shard >= MerchantDayShards {
		panic(fmt.Sprintf("shard %d out of range", shard))
	}
	return fmt.Sprintf("%s%s#%s#%02d", merchantDayPrefix, merchantID, localDate, shard)
}

func shardOf(chargeID string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(chargeID))
	return int(h.Sum32() % MerchantDayShards)
}
