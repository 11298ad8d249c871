package table_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/google/go-cmp/cmp"

	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/table"
)

// opErr wraps err the way the SDK returns errors from an operation.
func opErr(err error) error {
	return &smithy.OperationError{ServiceID: "DynamoDB", OperationName: "TransactWriteItems", Err: err}
}

func httpErr(status int, err error) error {
	return &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
		Err:      err,
	}}
}

func reasons(codes ...string) []types.CancellationReason {
	var rs []types.CancellationReason
	for _, c := range codes {
		rs = append(rs, types.CancellationReason{Code: aws.String(c)})
	}
	return rs
}

func TestClassify(t *testing.T) {
	type result struct {
		Kind   fault.Kind
		Reason string
	}
	throttled := func(r string) *result { return &result{fault.KindThrottled, r} }
	transient := func(r string) *result { return &result{fault.KindTransient, r} }
	permanent := fault.Permanent("bad_currency", errors.New("XYZ"))

	tests := []struct {
		name string
		err  error
		want *result // nil: Classify returns nil
	}{
		{"nil", nil, nil},
		{"provisioned throughput", opErr(httpErr(400, &types.ProvisionedThroughputExceededException{})), throttled("dynamodb_throttled")},
		{"request limit", opErr(&types.RequestLimitExceeded{}), throttled("dynamodb_throttled")},
		{"throttling typed", opErr(&types.ThrottlingException{}), throttled("dynamodb_throttled")},
		{"throttling code", opErr(&smithy.GenericAPIError{Code: "ThrottlingException"}), throttled("dynamodb_throttled")},
		{"throttling after retries", opErr(&retry.MaxAttemptsError{Attempt: 3, Err: httpErr(400, &types.ProvisionedThroughputExceededException{})}), throttled("dynamodb_throttled")},
		{"transaction conflict", opErr(&types.TransactionConflictException{}), throttled("dynamodb_transaction_conflict")},
		{"transaction in progress", opErr(&types.TransactionInProgressException{}), throttled("dynamodb_transaction_conflict")},
		{"canceled by conflict", opErr(&types.TransactionCanceledException{CancellationReasons: reasons("None", "TransactionConflict")}), throttled("dynamodb_transaction_conflict")},
		{"canceled by throttling", opErr(&types.TransactionCanceledException{CancellationReasons: reasons("ThrottlingError", "None")}), throttled("dynamodb_transaction_conflict")},
		{"canceled by condition", opErr(&types.TransactionCanceledException{CancellationReasons: reasons("ConditionalCheckFailed", "None")}), transient("dynamodb_transaction_canceled")},
		{"retry quota", opErr(errors.Join(errors.New("boom"), ratelimit.QuotaExceededError{Available: 1, Requested: 5})), throttled("dynamodb_retry_quota")},
		{"http 429", opErr(httpErr(429, errors.New("slow down"))), throttled("dynamodb_throttled")},
		{"table missing", opErr(&types.ResourceNotFoundException{Message: aws.String("Cannot do operations on a non-existent table")}), transient("table_missing")},
		{"table missing by code", opErr(&smithy.GenericAPIError{Code: "ResourceNotFoundException"}), transient("table_missing")},
		{"validation", opErr(httpErr(400, &smithy.GenericAPIError{Code: "ValidationException", Message: "One or more parameter values were invalid"})), transient("dynamodb_validation")},
		{"condition failed unhandled", opErr(&types.ConditionalCheckFailedException{}), transient("dynamodb_condition_failed")},
		{"internal server error", opErr(httpErr(500, &types.InternalServerError{})), transient("dynamodb_unavailable")},
		{"server fault code", opErr(&smithy.GenericAPIError{Code: "ServiceUnavailable", Fault: smithy.FaultServer}), transient("dynamodb_unavailable")},
		{"http 503 undecoded", opErr(httpErr(503, errors.New("bad gateway body"))), transient("dynamodb_unavailable")},
		{"unsupported operation", opErr(httpErr(400, &smithy.GenericAPIError{Code: "UnknownOperationException", Message: "Unsupported operation TransactWriteItems"})), transient("dynamodb_unsupported")},
		{"auth", opErr(&smithy.GenericAPIError{Code: "UnrecognizedClientException"}), transient("dynamodb_auth")},
		{"deadline", opErr(fmt.Errorf("send: %w", context.DeadlineExceeded)), transient("dynamodb_timeout")},
		{"canceled", opErr(&aws.RequestCanceledError{Err: context.Canceled}), transient("canceled")},
		{"http client timeout", opErr(&smithyhttp.RequestSendError{Err: &url.Error{Op: "Post", URL: "http://x", Err: timeoutErr{}}}), transient("dynamodb_timeout")},
		{"connection refused", opErr(&retry.MaxAttemptsError{Attempt: 3, Err: &smithyhttp.RequestSendError{Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}}), transient("dynamodb_unreachable")},
		{"connection reset", fmt.Errorf("read: %w", syscall.ECONNRESET), transient("dynamodb_unreachable")},
		{"unknown", errors.New("something else"), transient("dynamodb_error")},
		{"already a fault", permanent, &result{fault.KindPermanent, "bad_currency"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := table.Classify(tt.err)
			var got *result
			if err != nil {
				got = &result{fault.KindOf(err), fault.ReasonOf(err)}
				if !errors.Is(err, tt.err) {
					t.Errorf("Classify(%v) = %v does not wrap the original error", tt.err, err)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Classify(%v) mismatch (-want +got):\n%s", tt.err, diff)
			}
		})
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestCancellationReasons(t *testing.T) {
	rs := reasons("None", "ConditionalCheckFailed")
	got, ok := table.CancellationReasons(opErr(&types.TransactionCanceledException{CancellationReasons: rs}))
	if !ok {
		t.Fatal("CancellationReasons() ok = false, want true")
	}
	if diff := cmp.Diff(rs, got, cmp.Comparer(func(a, b types.CancellationReason) bool {
		return aws.ToString(a.Code) == aws.ToString(b.Code)
	})); diff != "" {
		t.Errorf("CancellationReasons() mismatch (-want +got):\n%s", diff)
	}
	if table.ConditionFailedAt(got, 0) || !table.ConditionFailedAt(got, 1) || table.ConditionFailedAt(got, 2) || table.ConditionFailedAt(got, -1) {
		t.Errorf("ConditionFailedAt wrong for %v", rs)
	}
	if _, ok := table.CancellationReasons(opErr(&types.ConditionalCheckFailedException{})); ok {
		t.Error("CancellationReasons(ConditionalCheckFailedException) ok = true, want false")
	}
	if _, ok := table.CancellationReasons(nil); ok {
		t.Error("CancellationReasons(nil) ok = true, want false")
	}
}

func TestCanceledRetryable(t *testing.T) {
	tests := []struct {
		codes []string
		want  bool
	}{
		{nil, false},
		{[]string{"None", "ConditionalCheckFailed"}, false},
		{[]string{"None", "ValidationError"}, false},
		{[]string{"TransactionConflict", "None"}, true},
		{[]string{"None", "ThrottlingError"}, true},
		{[]string{"ProvisionedThroughputExceeded"}, true},
		{[]string{"ConditionalCheckFailed", "TransactionConflict"}, true},
	}
	for _, tt := range tests {
		if got := table.CanceledRetryable(reasons(tt.codes...)); got != tt.want {
			t.Errorf("CanceledRetryable(%v) = %v, want %v", tt.codes, got, tt.want)
		}
	}
}
