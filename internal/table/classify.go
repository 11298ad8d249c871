package table

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/sebelas/sebelas/internal/fault"
)

// Reasons Classify gives (fault.ReasonOf of its result).
const (
	ReasonThrottled           = "dynamodb_throttled"
	ReasonConflict            = "dynamodb_transaction_conflict"
	ReasonRetryQuota          = "dynamodb_retry_quota"
	ReasonTableMissing        = "table_missing"
	ReasonValidation          = "dynamodb_validation"
	ReasonTimeout             = "dynamodb_timeout"
	ReasonUnavailable         = "dynamodb_unavailable"
	ReasonUnreachable         = "dynamodb_unreachable"
	ReasonAuth                = "dynamodb_auth"
	ReasonUnsupported         = "dynamodb_unsupported"
	ReasonConditionFailed     = "dynamodb_condition_failed"
	ReasonTransactionCanceled = "dynamodb_transaction_canceled"
	ReasonCanceled            = "canceled"
	ReasonUnknown             = "dynamodb_error"
)

var throttleCodes = map[string]bool{
	"ProvisionedThroughputExceededException": true,
	"ThrottlingException":                    true,
	"Throttling":                             true,
	"RequestLimitExceeded":                   true,
	"LimitExceededException":                 true,
	"TooManyRequestsException":               true,
}

var conflictCodes = map[string]bool{
	"TransactionConflictException":     true,
	"TransactionInProgressException":   true,
	"ReplicatedWriteConflictException": true,
}

var authCodes = map[string]bool{
	"UnrecognizedClientException":  true,
	"AccessDeniedException":        true,
	"MissingAuthenticationToken":   true,
	"InvalidSignatureException":    true,
	"IncompleteSignatureException": true,
	"ExpiredTokenException":        true,
}

// Classify wraps an error from the DynamoDB client into a fault kind, so a
// handler can answer with fault.Status. A storage error is never the event's
// fault, so nothing here is permanent:
//
//   - throttling, transaction conflicts and an exhausted retry quota are
//     fault.Throttled (429);
//   - everything else is fault.Transient (503), with a reason naming what
//     went wrong: table_missing, dynamodb_validation (our bug), timeouts,
//     5xx, connection errors, credentials, an operation the store does not
//     implement, an unhandled failed condition.
//
// An error that already carries a fault kind is returned as is; nil is nil.
// Callers that expect a failed condition must look at it (errors.As with
// *types.ConditionalCheckFailedException, or CancellationReasons) before
// calling Classify.
func Classify(err error) error {
	if err == nil {
		return nil
	}
	var fe *fault.Error
	if errors.As(err, &fe) {
		return err
	}
	reason, throttled := classify(err)
	if throttled {
		return fault.Throttled(reason, err)
	}
	return fault.Transient(reason, err)
}

func classify(err error) (reason string, throttled bool) {
	// Typed DynamoDB errors first.
	var (
		pte *types.ProvisionedThroughputExceededException
		rle *types.RequestLimitExceeded
		the *types.ThrottlingException
		tce *types.TransactionConflictException
		tip *types.TransactionInProgressException
		rnf *types.ResourceNotFoundException
		ccf *types.ConditionalCheckFailedException
		can *types.TransactionCanceledException
		ise *types.InternalServerError
	)
	switch {
	case errors.As(err, &pte), errors.As(err, &rle), errors.As(err, &the):
		return ReasonThrottled, true
	case errors.As(err, &tce), errors.As(err, &tip):
		return ReasonConflict, true
	case errors.As(err, &can):
		if CanceledRetryable(can.CancellationReasons) {
			return ReasonConflict, true
		}
		return ReasonTransactionCanceled, false
	case errors.As(err, &rnf):
		return ReasonTableMissing, false
	case errors.As(err, &ccf):
		return ReasonConditionFailed, false
	case errors.As(err, &ise):
		return ReasonUnavailable, false
	}

	// Then error codes, for errors the SDK has no type for (and for
	// DynamoDB-compatible stores that answer with other codes).
	var api smithy.APIError
	if errors.As(err, &api) {
		code := api.ErrorCode()
		switch {
		case throttleCodes[code]:
			return ReasonThrottled, true
		case conflictCodes[code]:
			return ReasonConflict, true
		case code == "ResourceNotFoundException":
			return ReasonTableMissing, false
		case code == "ValidationException" || code == "SerializationException":
			return ReasonValidation, false
		case authCodes[code]:
			return ReasonAuth, false
		case code == "UnknownOperationException" || code == "UnsupportedOperationException":
			// A DynamoDB-compatible store without this API (Alternator has no
			// transactions): a deployment error, not the event's.
			return ReasonUnsupported, false
		case code == "RequestTimeout" || code == "RequestTimeoutException":
			return ReasonTimeout, false
		case api.ErrorFault() == smithy.FaultServer:
			return ReasonUnavailable, false
		}
	}

	var quota ratelimit.QuotaExceededError
	if errors.As(err, &quota) {
		return ReasonRetryQuota, true
	}

	// HTTP status for answers that did not decode into an API error.
	var status interface{ HTTPStatusCode() int }
	if errors.As(err, &status) {
		switch s := status.HTTPStatusCode(); {
		case s == 429:
			return ReasonThrottled, true
		case s >= 500:
			return ReasonUnavailable, false
		}
	}

	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return ReasonCanceled, false
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return ReasonTimeout, false
	}

	var (
		send *smithyhttp.RequestSendError
		op   *net.OpError
		dns  *net.DNSError
	)
	switch {
	case errors.As(err, &send), errors.As(err, &op), errors.As(err, &dns),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return ReasonUnreachable, false
	}
	return ReasonUnknown, false
}
