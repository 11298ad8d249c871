// Package ddbtest gives every storage test in the repository a DynamoDB
// table of its own.
//
//	func TestMain(m *testing.M) { ddbtest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		client, tableName := ddbtest.New(t)
//		...
//	}
//
// The store is, in order: $SEBELAS_TEST_DYNAMODB_ENDPOINT, else
// $AWS_ENDPOINT_URL_DYNAMODB, else one DynamoDB Local started (and
// installed, if needed) once per test binary, in memory with -sharedDb.
// When no store can be had the test fails with the reason: storage tests
// never skip silently.
package ddbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/sebelas/sebelas/internal/devtools/ddblocal"
	"github.com/sebelas/sebelas/internal/table"
)

// EnvEndpoint names an already running store for the tests.
const EnvEndpoint = "SEBELAS_TEST_DYNAMODB_ENDPOINT"

// testTimeoutMs is the per-attempt timeout of test clients unless
// SEBELAS_DYNAMODB_TIMEOUT_MS says otherwise: DynamoDB Local on a busy
// two-core machine, with its JIT still warming up, is slower than DynamoDB.
const testTimeoutMs = 10000

// startTimeout bounds installing and starting DynamoDB Local.
const startTimeout = 10 * time.Minute

var (
	once     sync.Once
	endpoint string
	instance *ddblocal.Instance
	startErr error
)

// Main runs the tests of a package, stops the DynamoDB Local it started, if
// any, and exits. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if instance != nil {
		if err := instance.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "ddbtest:", err)
		}
	}
	os.Exit(code)
}

// Endpoint returns the store's base URL, starting DynamoDB Local on first
// use. It fails the test if there is no store.
func Endpoint(t testing.TB) string {
	t.Helper()
	once.Do(setup)
	if startErr != nil {
		t.Fatalf("ddbtest: no DynamoDB for the tests: %v", startErr)
	}
	return endpoint
}

func setup() {
	if e := os.Getenv(EnvEndpoint); e != "" {
		endpoint = e
		return
	}
	if e := os.Getenv(table.EnvEndpointDynamoDB); e != "" {
		endpoint = e
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
	}
	inst, err := ddblocal.Start(ctx, ddblocal.Options{InMemory: true, SharedDB: true, Logf: logf})
	if err != nil {
		startErr = fmt.Errorf("%w\n(set %s to use a running DynamoDB-compatible store instead)", err, EnvEndpoint)
		return
	}
	instance, endpoint = inst, inst.Endpoint
}

// Config returns the configuration of a client for tableName on the test
// store, as a function server under test would read it from its
// environment.
func Config(t testing.TB, tableName string) table.Config {
	t.Helper()
	ep := Endpoint(t)
	c, err := table.ConfigFromEnv(os.Getenv)
	if err != nil {
		t.Fatalf("ddbtest: %v", err)
	}
	if os.Getenv(table.EnvTimeoutMs) == "" {
		c.TimeoutMs = testTimeoutMs
	}
	c.Endpoint, c.Table = ep, tableName
	return c
}

// Env returns the environment variables that point a function server at
// tableName on the test store (for exec.Cmd.Env or t.Setenv).
func Env(t testing.TB, tableName string) []string {
	t.Helper()
	c := Config(t, tableName)
	return []string{
		table.EnvRegion + "=" + c.Region,
		table.EnvEndpointDynamoDB + "=" + c.Endpoint,
		table.EnvTable + "=" + c.Table,
		fmt.Sprintf("%s=%d", table.EnvMaxAttempts, c.MaxAttempts),
		fmt.Sprintf("%s=%d", table.EnvTimeoutMs, c.TimeoutMs),
	}
}

// New returns a client and the name of a fresh table, unique to this test,
// created with table.Create and deleted when the test ends. optFns are
// passed to table.NewClient (for example a table.Meter's Option).
func New(t testing.TB, optFns ...func(*dynamodb.Options)) (*dynamodb.Client, string) {
	t.Helper()
	name := TableName(t.Name())
	cfg := Config(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client, err := table.NewClient(ctx, cfg, optFns...)
	if err != nil {
		t.Fatalf("ddbtest: client: %v", err)
	}
	if err := table.Create(ctx, client, name); err != nil {
		t.Fatalf("ddbtest: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := table.Delete(ctx, client, name); err != nil {
			t.Errorf("ddbtest: %v", err)
		}
	})
	return client, name
}

// TableName turns a test name into a unique table name:
// t_<sanitised name>_<8 hex digits>, at most 255 characters of DynamoDB's
// table name alphabet.
func TableName(testName string) string {
	var b strings.Builder
	for _, r := range testName {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	s := b.String()
	const max = 255 - len("t_") - len("_") - 8
	if len(s) > max {
		s = s[:max]
	}
	var id [4]byte
	rand.Read(id[:])
	return "t_" + s + "_" + hex.EncodeToString(id[:])
}
