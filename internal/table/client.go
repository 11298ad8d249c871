package table

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// MaxBackoff caps the SDK's delay between two attempts of one call. It is
// short on purpose: a function that keeps failing answers 429/503 and the
// Broker, not the function, backs off for long.
const MaxBackoff = 500 * time.Millisecond

// Connection pool sizing: one function instance serves many concurrent
// events, all to one host.
const (
	maxIdleConns        = 512
	maxIdleConnsPerHost = 256
	idleConnTimeout     = 90 * time.Second
	maxDialTimeout      = 2 * time.Second
)

// Dummy credentials used against a custom endpoint when the environment has
// none: DynamoDB Local accepts any.
const (
	localAccessKey = "local"
	localSecretKey = "local"
)

// NewClient builds a DynamoDB client for c. It makes no network call, so a
// function can build it at start. Zero MaxAttempts and TimeoutMs take their
// defaults. optFns are applied last (for example a Meter's Option). Every
// call is counted on the process's metrics (internal/telemetry).
//
// The client makes up to MaxAttempts attempts, with jittered backoff capped
// at MaxBackoff, on throttling, 5xx, connection errors and transaction
// conflicts: TransactionConflictException, and a TransactionCanceledException
// that CanceledRetryable accepts and where no condition failed (nothing of it
// was written, so sending it again is safe). TimeoutMs bounds each attempt.
func NewClient(ctx context.Context, c Config, optFns ...func(*dynamodb.Options)) (*dynamodb.Client, error) {
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.TimeoutMs == 0 {
		c.TimeoutMs = DefaultTimeoutMs
	}
	if c.Region == "" {
		c.Region = DefaultRegion
	}
	if c.Table == "" {
		c.Table = DefaultTable
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	timeout := time.Duration(c.TimeoutMs) * time.Millisecond
	dial := min(timeout, maxDialTimeout)
	httpClient := awshttp.NewBuildableClient().
		WithTimeout(timeout).
		WithDialerOptions(func(d *net.Dialer) {
			d.Timeout = dial
			d.KeepAlive = 30 * time.Second
		}).
		WithTransportOptions(func(t *http.Transport) {
			t.MaxIdleConns = maxIdleConns
			t.MaxIdleConnsPerHost = maxIdleConnsPerHost
			t.IdleConnTimeout = idleConnTimeout
			t.TLSHandshakeTimeout = timeout
			t.ResponseHeaderTimeout = timeout
		})

	creds := c.Credentials
	if creds == nil && c.Endpoint != "" && !envHasCredentials() {
		creds = credentials.NewStaticCredentialsProvider(localAccessKey, localSecretKey, "")
	}
	if creds == nil {
		var err error
		if creds, err = podCredentials(c.Region, os.Getenv, httpClient); err != nil {
			return nil, err
		}
	}
	awsCfg := aws.Config{
		Region:           c.Region,
		HTTPClient:       httpClient,
		Credentials:      creds,
		RetryMaxAttempts: c.MaxAttempts,
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = c.MaxAttempts
				o.MaxBackoff = MaxBackoff
				o.Retryables = append(o.Retryables, conflictRetryable{})
			})
		},
	}
	endpoint := c.Endpoint
	all := append([]func(*dynamodb.Options){telemetryOption, func(o *dynamodb.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
			// DynamoDB Local sends no X-Amz-Crc32 on error answers, and the
			// SDK then logs a checksum warning for each one (a failed
			// condition is one). Real DynamoDB keeps the check.
			o.DisableValidateResponseChecksum = true
		}
	}}, optFns...)
	return dynamodb.NewFromConfig(awsCfg, all...), nil
}

// envHasCredentials reports whether the environment names credentials the
// default chain would use (keys, a profile, web identity or a container
// endpoint).
func envHasCredentials() bool {
	for _, k := range []string{
		"AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
	} {
		if os.Getenv(k) != "" {
			return true
		}
	}
	return false
}

// conflictRetryable makes the SDK retry transaction conflicts, which the
// standard retryer leaves alone.
type conflictRetryable struct{}

func (conflictRetryable) IsErrorRetryable(err error) aws.Ternary {
	var tc *types.TransactionConflictException
	if errors.As(err, &tc) {
		return aws.TrueTernary
	}
	if reasons, ok := CancellationReasons(err); ok && CanceledRetryable(reasons) && !anyConditionFailed(reasons) {
		// A failed condition is an answer the caller wants now, not after
		// retries that would most likely fail the same way.
		return aws.TrueTernary
	}
	return aws.UnknownTernary
}
