package table

import (
	"errors"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Codes of types.CancellationReason.Code that DynamoDB documents.
const (
	ReasonNone                          = "None"
	ReasonConditionalCheckFailed        = "ConditionalCheckFailed"
	ReasonTransactionConflict           = "TransactionConflict"
	ReasonThrottlingError               = "ThrottlingError"
	ReasonProvisionedThroughputExceeded = "ProvisionedThroughputExceeded"
	ReasonItemCollectionSizeLimit       = "ItemCollectionSizeLimitExceeded"
	ReasonValidationError               = "ValidationError"
)

// CancellationReasons returns the per-item reasons of a canceled
// transaction, in the order of the request's items, and whether err is (or
// wraps) a *types.TransactionCanceledException.
func CancellationReasons(err error) ([]types.CancellationReason, bool) {
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		return nil, false
	}
	return tce.CancellationReasons, true
}

// ConditionFailedAt reports whether the i-th item of a canceled transaction
// failed its condition. With ReturnValuesOnConditionCheckFailure=ALL_OLD the
// reason's Item holds the item as it was.
func ConditionFailedAt(reasons []types.CancellationReason, i int) bool {
	return reasonAt(reasons, i) == ReasonConditionalCheckFailed
}

// CanceledRetryable reports whether any item was canceled by a transaction
// conflict or throttling. Nothing of a canceled transaction is written, so
// the whole transaction may be sent again; whether that is useful when
// another item also failed its condition is the caller's decision.
func CanceledRetryable(reasons []types.CancellationReason) bool {
	for i := range reasons {
		switch reasonAt(reasons, i) {
		case ReasonTransactionConflict, ReasonThrottlingError, ReasonProvisionedThroughputExceeded:
			return true
		}
	}
	return false
}

func anyConditionFailed(reasons []types.CancellationReason) bool {
	for i := range reasons {
		if ConditionFailedAt(reasons, i) {
			return true
		}
	}
	return false
}

func reasonAt(reasons []types.CancellationReason, i int) string {
	if i < 0 || i >= len(reasons) || reasons[i].Code == nil {
		return ""
	}
	return *reasons[i].Code
}
