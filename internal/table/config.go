// Package table is the shared DynamoDB plumbing of sebelas: configuration
// from the environment, the client, creating and deleting the table,
// classifying AWS errors into fault kinds, reading transaction cancellation
// reasons, and a round-trip meter.
//
// It knows the table's keys (from infra/dynamodb) but no item kinds and no
// business rule: each domain package owns the items it writes.
package table

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Defaults and limits of Config.
const (
	DefaultRegion      = "ap-southeast-1"
	DefaultTable       = "sebelas"
	DefaultMaxAttempts = 3
	DefaultTimeoutMs   = 2000

	MinMaxAttempts = 1
	MaxMaxAttempts = 10
	MinTimeoutMs   = 50
	MaxTimeoutMs   = 30000
)

// Environment variables read by ConfigFromEnv.
const (
	EnvRegion           = "AWS_REGION"
	EnvEndpointDynamoDB = "AWS_ENDPOINT_URL_DYNAMODB"
	EnvEndpoint         = "AWS_ENDPOINT_URL"
	EnvTable            = "SEBELAS_TABLE"
	EnvMaxAttempts      = "SEBELAS_DYNAMODB_MAX_ATTEMPTS"
	EnvTimeoutMs        = "SEBELAS_DYNAMODB_TIMEOUT_MS"
)

// Config says which table to talk to and how hard to try.
type Config struct {
	Region   string // AWS region; DynamoDB Local and Alternator accept any
	Endpoint string // base URL; empty means real AWS DynamoDB
	Table    string // table name
	// MaxAttempts is the number of HTTP attempts per API call, the first
	// included (1 = no SDK retry).
	MaxAttempts int
	// TimeoutMs bounds one HTTP attempt: connect, send and read the answer.
	TimeoutMs int
	// Credentials, when set, sign the requests; nil takes a pod's chain
	// (environment keys, web identity, container endpoint, instance role;
	// credentials.go), or dummy keys for a custom endpoint without any.
	Credentials aws.CredentialsProvider
}

// ConfigFromEnv reads the configuration the AWS way (see the Env constants).
// getenv is usually os.Getenv. A bad value is an error that names the
// variable, the value and what is accepted.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	get := func(k string) string { return strings.TrimSpace(getenv(k)) }
	c := Config{
		Region:      get(EnvRegion),
		Endpoint:    get(EnvEndpointDynamoDB),
		Table:       get(EnvTable),
		MaxAttempts: DefaultMaxAttempts,
		TimeoutMs:   DefaultTimeoutMs,
	}
	if c.Region == "" {
		c.Region = DefaultRegion
	}
	if c.Endpoint == "" {
		c.Endpoint = get(EnvEndpoint)
	}
	if c.Table == "" {
		c.Table = DefaultTable
	}
	var err error
	if c.MaxAttempts, err = intEnv(get, EnvMaxAttempts, DefaultMaxAttempts, MinMaxAttempts, MaxMaxAttempts); err != nil {
		return Config{}, err
	}
	if c.TimeoutMs, err = intEnv(get, EnvTimeoutMs, DefaultTimeoutMs, MinTimeoutMs, MaxTimeoutMs); err != nil {
		return Config{}, err
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

func intEnv(get func(string) string, name string, def, lo, hi int) (int, error) {
	s := get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("table config: %s=%q is not an integer (want %d..%d)", name, s, lo, hi)
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("table config: %s=%d is out of range (want %d..%d)", name, n, lo, hi)
	}
	return n, nil
}

// Validate checks a Config built by hand or from the environment.
func (c Config) Validate() error {
	if c.Region == "" {
		return fmt.Errorf("table config: region is empty (set %s)", EnvRegion)
	}
	for _, r := range c.Region {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return fmt.Errorf("table config: %s=%q is not a region name (like %s)", EnvRegion, c.Region, DefaultRegion)
		}
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("table config: endpoint %q is not an http(s) URL (like http://localhost:8000); set %s or %s", c.Endpoint, EnvEndpointDynamoDB, EnvEndpoint)
		}
	}
	if err := ValidateTableName(c.Table); err != nil {
		return fmt.Errorf("table config: %s: %w", EnvTable, err)
	}
	if c.MaxAttempts < MinMaxAttempts || c.MaxAttempts > MaxMaxAttempts {
		return fmt.Errorf("table config: max attempts %d is out of range (want %d..%d, %s)", c.MaxAttempts, MinMaxAttempts, MaxMaxAttempts, EnvMaxAttempts)
	}
	if c.TimeoutMs < MinTimeoutMs || c.TimeoutMs > MaxTimeoutMs {
		return fmt.Errorf("table config: timeout %d ms is out of range (want %d..%d, %s)", c.TimeoutMs, MinTimeoutMs, MaxTimeoutMs, EnvTimeoutMs)
	}
	return nil
}

// ValidateTableName checks DynamoDB's rule for table names: 3 to 255
// characters from a-z, A-Z, 0-9, '_', '-' and '.'.
func ValidateTableName(name string) error {
	if len(name) < 3 || len(name) > 255 {
		return fmt.Errorf("table name %q must be 3..255 characters long", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return fmt.Errorf("table name %q has %q; allowed are a-z A-Z 0-9 _ - .", name, r)
		}
	}
	return nil
}
