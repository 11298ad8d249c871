// Package operator talks to the mobile operators that deliver airtime and
// data, through a top-up aggregator: one HTTP API in front of many
// operators, as the wallets of the region use (an aggregator per market, or
// one regional). It holds the Adapter interface the top-up function calls,
// the HTTP adapter, a circuit breaker per operator, and a simulator of the
// aggregator API for `sebelas dev`, `sebelas operator-sim` and the tests.
//
// # The aggregator API (v1)
//
//	POST /v1/topups             body Request           submit, idempotent on reference
//	GET  /v1/topups/{reference}                        status of an earlier submit
//	GET  /v1/statements?from&to&format                 the period's statement (statement.go)
//
// Both answer {"reference", "status", "operator_ref", "code"} with status
// one of succeeded, failed or pending. The promises the top-up function
// relies on, and the simulator keeps:
//
//   - reference is the idempotency key. A submit of a reference already
//     taken does not deliver again; it answers the state of the first one
//     (or 409 reference_conflict if the content differs).
//   - "succeeded" is final: the airtime or data was delivered; operator_ref
//     is the operator's receipt.
//   - "failed" is final, whatever the HTTP status carrying it (200, 4xx, 503
//     operator_unavailable, 429 rate_limited): nothing was delivered and
//     nothing will be for that submit.
//   - "pending" means taken, not final yet; ask again later.
//   - A submit received after its expires_at is not carried out (it fails
//     with code "expired"). So when a status query answers 404 with code
//     "not_found" after expires_at, the request never arrived and never
//     will: the top-up may be failed and its hold released.
//
// Anything else — a timeout, a connection cut after the request was sent,
// a 5xx without a verdict, a body that does not parse — is Unknown: the
// operator may or may not have taken the request, and only a later status
// query can tell.
package operator

import (
	"context"
	"regexp"
	"time"
)

// Outcome is what a call to the aggregator established.
type Outcome int

const (
	// Unknown: no verdict; the request may or may not have been taken.
	Unknown Outcome = iota
	// Succeeded: delivered, final.
	Succeeded
	// Failed: not delivered and never will be (for this submit), final.
	Failed
	// Pending: taken, not final yet.
	Pending
	// NotFound: a status query for a reference the aggregator never took.
	NotFound
)

func (o Outcome) String() string {
	switch o {
	case Succeeded:
		return "succeeded"
	case Failed:
		return "failed"
	case Pending:
		return "pending"
	case NotFound:
		return "not_found"
	default:
		return "unknown"
	}
}

// Codes: why a call failed or gave no verdict. Operators and aggregators
// add their own (invalid_msisdn, wrong_operator, ...); those pass through
// when they are snake_case, else they become CodeRejected.
const (
	CodeRejected       = "operator_rejected"
	CodeUnavailable    = "operator_unavailable"
	CodeRateLimited    = "rate_limited"
	CodeUnauthorized   = "unauthorized"
	CodeExpired        = "expired"
	CodeInvalidRequest = "invalid_request"
	CodeConflict       = "reference_conflict"
	CodeNotFound       = "not_found"
	// Codes of Unknown outcomes.
	CodeTimeout     = "timeout"
	CodeTransport   = "transport_error"
	CodeBadResponse = "bad_response"
	// CodeCircuitOpen: the breaker refused the call; nothing was sent.
	CodeCircuitOpen = "circuit_open"
)

// Product kinds.
const (
	KindAirtime = "airtime"
	KindData    = "data"
)

// Request is one top-up as the aggregator sees it.
type Request struct {
	// Reference is our topup_id: the aggregator's idempotency key.
	Reference string `json:"reference"`
	// MSISDN is the E.164 number to top up.
	MSISDN string `json:"msisdn"`
	// Operator is the operator id (msisdn.Operator.ID).
	Operator string `json:"operator"`
	// Product is the aggregator's product id of a fixed denomination or
	// bundle; empty for an open airtime amount.
	Product string `json:"product,omitempty"`
	// Kind is KindAirtime or KindData.
	Kind string `json:"kind"`
	// FaceValue is what the phone receives, in minor units of Currency
	// (for a bundle, its retail value).
	FaceValue int64  `json:"face_value"`
	Currency  string `json:"currency"`
	// ExpiresAt: the aggregator must not carry the request out after it.
	ExpiresAt time.Time `json:"expires_at"`
}

// Result is the answer to one call.
type Result struct {
	Outcome Outcome
	// OperatorRef is the operator's receipt, on Succeeded (and sometimes
	// Pending and Failed).
	OperatorRef string
	// Code says why, on Failed and Unknown.
	Code string
}

// Adapter submits top-ups and asks about them. Implementations never
// return a Result that claims more than they know: a doubt is Unknown.
type Adapter interface {
	Submit(ctx context.Context, req Request) Result
	// Status asks about an earlier submit; operator is the request's, for
	// the per-operator breaker.
	Status(ctx context.Context, operator, reference string) Result
}

// Formats of what comes back over the wire, checked before it is used: a
// code becomes a reason in logs and a receipt is copied into events, whose
// schema allows printable ASCII without spaces, up to 128 characters.
var (
	codePattern        = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
	operatorRefPattern = regexp.MustCompile(`^[!-~]{1,128}$`)
	referencePattern   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$`)
)
