// Package stack runs the whole of sebelas in one process, the way `sebelas
// dev` and the end-to-end tests need it: DynamoDB Local (or a given
// endpoint), the table, every function as its own local HTTP server, and the
// local Broker (package router) routing between them by the Triggers and
// PingSources of infra/knative.
//
// Like router and manifests, it links the Knative API packages and is only for
// cmd/sebelas and tests.
package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/sebelas/sebelas/internal/charge"
	"github.com/sebelas/sebelas/internal/ddblocal"
	"github.com/sebelas/sebelas/internal/deadletter"
	"github.com/sebelas/sebelas/internal/fraud"
	"github.com/sebelas/sebelas/internal/function"
	"github.com/sebelas/sebelas/internal/ledger"
	"github.com/sebelas/sebelas/internal/manifests"
	"github.com/sebelas/sebelas/internal/router"
	"github.com/sebelas/sebelas/internal/table"
)

// Builders maps each Knative Service name in infra/knative to the builder of
// its handler. A Service without a builder is reported as not built yet;
// events for it are retried and then dead-lettered, as on a cluster where
// the Service does not answer.
var Builders = map[string]function.Builder{
	"charge":      charge.Build,
	"fraud":       fraud.Build,
	"dead-letter": deadletter.Build,
}

// Options say how to start the stack.
type Options struct {
	// Root is the repository root (for .cache and infra/knative); empty
	// means ddblocal.RepoRoot().
	Root string
	// Endpoint is an existing DynamoDB endpoint; empty starts DynamoDB Local.
	Endpoint string
	// Table is the table name; empty means "sebelas".
	Table string
	// Env is extra environment for the functions (fraud rules, limits...).
	Env map[string]string
	// IngressAddr is where the Broker ingress listens; empty means
	// "127.0.0.1:0" (a free port).
	IngressAddr string
	// Logger receives the stack's and functions' logs; nil discards.
	Logger *slog.Logger
	// Router tunes the local Broker (retries wait for real unless Sleep is
	// set).
	Router router.Options
}

// Stack is a running system.
type Stack struct {
	Endpoint   string
	Table      string
	IngressURL string
	DB         *dynamodb.Client
	Ledger     *ledger.Store
	Router     *router.Router
	Manifests  *manifests.Set
	// Functions maps a Service name to its local URL.
	Functions map[string]string
	// NotBuilt lists Services in the manifests with no builder yet.
	NotBuilt []string

	cancel  context.CancelFunc
	wg      sync.WaitGroup
	ddb     *ddblocal.Instance
	ingress *http.Server
}

// Start brings the stack up. Close stops it.
func Start(ctx context.Context, opts Options) (st *Stack, err error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	root := opts.Root
	if root == "" {
		if root, err = ddblocal.RepoRoot(); err != nil {
			return nil, err
		}
	}
	st = &Stack{Table: opts.Table, Functions: map[string]string{}}
	if st.Table == "" {
		st.Table = "sebelas"
	}
	runCtx, cancel := context.WithCancel(context.Background())
	st.cancel = cancel
	defer func() {
		if err != nil {
			_ = st.Close()
		}
	}()

	st.Endpoint = opts.Endpoint
	if st.Endpoint == "" {
		log.Info("starting DynamoDB Local")
		st.ddb, err = ddblocal.Start(ctx, ddblocal.Options{Root: root, InMemory: true, SharedDB: true,
			Logf: func(f string, a ...any) { log.Info(fmt.Sprintf(f, a...)) }})
		if err != nil {
			return nil, fmt.Errorf("DynamoDB Local: %w", err)
		}
		st.Endpoint = st.ddb.Endpoint
	}
	env := map[string]string{
		"AWS_REGION":                table.DefaultRegion,
		"AWS_ENDPOINT_URL_DYNAMODB": st.Endpoint,
		"SEBELAS_TABLE":             st.Table,
		"PORT":                      "0",
	}
	for k, v := range opts.Env {
		env[k] = v
	}
	getenv := func(k string) string { return env[k] }
	tc, err := table.ConfigFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	if st.DB, err = table.NewClient(ctx, tc); err != nil {
		return nil, err
	}
	if err := table.Create(ctx, st.DB, st.Table); err != nil {
		return nil, fmt.Errorf("create table: %w", err)
	}
	st.Ledger = ledger.New(st.DB, st.Table, nil)

	if st.Manifests, err = manifests.Load(filepath.Join(root, "infra", "knative")); err != nil {
		return nil, err
	}
	if err := st.Manifests.Validate(ctx); err != nil {
		return nil, fmt.Errorf("infra/knative: %w", err)
	}
	var names []string
	for _, svc := range st.Manifests.Services {
		names = append(names, svc.Name)
	}
	sort.Strings(names)
	for _, name := range names {
		build, ok := Builders[name]
		if !ok {
			st.NotBuilt = append(st.NotBuilt, name)
			continue
		}
		addr, err := st.startFunction(runCtx, name, getenv, build, log)
		if err != nil {
			return nil, fmt.Errorf("start %s: %w", name, err)
		}
		st.Functions[name] = "http://" + addr
	}
	resolve := func(name string) (string, bool) {
		u, ok := st.Functions[name]
		return u, ok
	}
	ropts := opts.Router
	if ropts.Logger == nil {
		ropts.Logger = log.With("component", "broker")
	}
	if st.Router, err = router.New(st.Manifests, resolve, ropts); err != nil {
		return nil, err
	}
	addr := opts.IngressAddr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("broker ingress: %w", err)
	}
	st.IngressURL = "http://" + ln.Addr().String()
	st.ingress = &http.Server{Handler: st.Router, ReadHeaderTimeout: 10 * time.Second}
	st.wg.Add(1)
	go func() {
		defer st.wg.Done()
		if err := st.ingress.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("broker ingress", "err", err)
		}
	}()
	return st, nil
}

func (st *Stack) startFunction(ctx context.Context, name string, getenv func(string) string, build function.Builder, log *slog.Logger) (string, error) {
	ready := make(chan string, 1)
	errc := make(chan error, 1)
	st.wg.Add(1)
	go func() {
		defer st.wg.Done()
		errc <- function.RunWithLogger(ctx, name, getenv, build, log.With("function", name), func(addr string) { ready <- addr })
	}()
	select {
	case addr := <-ready:
		_, port, _ := net.SplitHostPort(addr)
		return "127.0.0.1:" + port, nil
	case err := <-errc:
		return "", err
	case <-time.After(30 * time.Second):
		return "", errors.New("not ready after 30s")
	}
}

// Close stops the functions, the ingress, the router and DynamoDB Local.
func (st *Stack) Close() error {
	var errs []error
	if st.ingress != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, st.ingress.Shutdown(ctx))
		cancel()
	}
	if st.Router != nil {
		errs = append(errs, st.Router.Close())
	}
	st.cancel()
	st.wg.Wait()
	if st.ddb != nil {
		errs = append(errs, st.ddb.Stop())
	}
	return errors.Join(errs...)
}
