package ledger

import (
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Key prefixes. They are part of the stored format: changing one is a data
// migration, not a refactor.
const (
	walletPrefix     = "W#"
	balancePrefix    = "BAL#"
	chargePrefix     = "C#"
	chargeSK         = "C"
	conflictSKPrefix = "X#"
	cashInPrefix     = "K#"
	cashInSK         = "K"
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
