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
	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/sebelas/sebelas/internal/appgw"
	"github.com/sebelas/sebelas/internal/charge"
	"github.com/sebelas/sebelas/internal/deadletter"
	"github.com/sebelas/sebelas/internal/devtools/ddblocal"
	"github.com/sebelas/sebelas/internal/devtools/manifests"
	"github.com/sebelas/sebelas/internal/devtools/router"
	"github.com/sebelas/sebelas/internal/fraud"
	"github.com/sebelas/sebelas/internal/function"
	"github.com/sebelas/sebelas/internal/ingress"
	"github.com/sebelas/sebelas/internal/ledger"
	"github.com/sebelas/sebelas/internal/operator"
	"github.com/sebelas/sebelas/internal/refund"
	"github.com/sebelas/sebelas/internal/settle"
	"github.com/sebelas/sebelas/internal/signing"
	"github.com/sebelas/sebelas/internal/table"
	"github.com/sebelas/sebelas/internal/topup"
)

// Builders maps each Knative Service name in infra/knative to the builder of
// its handler. A Service without a builder is reported as not built yet;
// events for it are retried and then dead-lettered, as on a cluster where
// the Service does not answer.
var Builders = map[string]function.Builder{
	"charge":      charge.Build,
	"fraud":       fraud.Build,
	"dead-letter": deadletter.Build,
	"refund":      refund.Build,
	"settle":      settle.Build,
	"topup":       topup.Build,
}

// HTTPBuilders are the Services that speak plain HTTP rather than
// CloudEvents: the marketplace ingress (401/403 answers, /metrics). They are
// started like the others, with K_SINK set to the local Broker.
var HTTPBuilders = map[string]function.HTTPBuilder{
	"ingress": ingress.Build,
	"appgw":   appgw.Build,
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
	// Builders replaces the package's Builders for this stack; nil means
	// Builders. `sebelas bench` wraps them to time events through the path.
	Builders map[string]function.Builder
	// Operator is how the operator simulator behaves; the stack starts one
	// for topup unless Env names SEBELAS_OPERATOR_URL.
	Operator operator.SimConfig
	// Keys are the per-role signing keys of the run; nil makes fresh ones.
	Keys *signing.DevKeys
	// Run runs each CloudEvents function instead of
	// function.RunWithLogger; the chaos run uses it to crash and restart
	// functions. nil means function.RunWithLogger.
	Run RunFunc
}

// RunFunc runs one function until ctx ends, like function.RunWithLogger.
type RunFunc func(ctx context.Context, name string, getenv func(string) string, build function.Builder, log *slog.Logger, ready func(addr string)) error

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
	// Operator is the top-up operator simulator the stack started (nil
	// when Options.Env named an aggregator), serving at OperatorURL.
	Operator    *operator.Simulator
	OperatorURL string
	operatorSrv *http.Server
	// Keys are the run's per-role keys: each function is given only the
	// private and public keys its Service in infra/knative lists; tests and
	// `sebelas dev` sign as the ingress, the app gateway or a reviewer with
	// them (PublishSigned).
	Keys signing.DevKeys

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
	started := st // the named result is nil on the error paths
	defer func() {
		if err != nil {
			_ = started.Close()
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
		// The rules of the ConfigMap, watched: edit the file, the running
		// fraud function reloads it.
		fraud.EnvRules: filepath.Join(root, "infra", "knative", "fraud-rules.yaml"),
	}
	if opts.Keys != nil {
		st.Keys = *opts.Keys
	} else {
		// Fresh keys per role and run, never a key in the repository.
		st.Keys = signing.NewDevKeys()
	}
	for k, v := range st.Keys.Env {
		env[k] = v
	}
	for k, v := range opts.Env {
		env[k] = v
	}
	if env[topup.EnvOperatorURL] == "" {
		if err := st.startOperator(opts.Operator, log); err != nil {
			return nil, err
		}
		env[topup.EnvOperatorURL] = st.OperatorURL
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
	// The Broker ingress listens before the functions start so its address
	// is known to them: the marketplace ingress publishes to K_SINK, as a
	// SinkBinding would set it on a cluster.
	addr := opts.IngressAddr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("broker ingress: %w", err)
	}
	defer func() {
		if err != nil {
			ln.Close()
		}
	}()
	st.IngressURL = "http://" + ln.Addr().String()
	if _, ok := env["K_SINK"]; !ok {
		env["K_SINK"] = st.IngressURL
	}
	var names []string
	for _, svc := range st.Manifests.Services {
		names = append(names, svc.Name)
	}
	sort.Strings(names)
	for _, name := range names {
		builders := opts.Builders
		if builders == nil {
			builders = Builders
		}
		build, ok := builders[name]
		getenv := st.Manifests.KeysOf(name, getenv)
		if !ok {
			if hb, ok := HTTPBuilders[name]; ok {
				addr, err := st.startHTTPFunction(runCtx, name, getenv, hb, log)
				if err != nil {
					return nil, fmt.Errorf("start %s: %w", name, err)
				}
				st.Functions[name] = "http://" + addr
				continue
			}
			st.NotBuilt = append(st.NotBuilt, name)
			continue
		}
		addr, err := st.startFunction(runCtx, name, getenv, build, opts.Run, log)
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

func (st *Stack) startFunction(ctx context.Context, name string, getenv func(string) string, build function.Builder, run RunFunc, log *slog.Logger) (string, error) {
	if run == nil {
		run = function.RunWithLogger
	}
	return st.started(func(ready func(string)) error {
		return run(ctx, name, getenv, build, log.With("function", name), ready)
	})
}

func (st *Stack) startHTTPFunction(ctx context.Context, name string, getenv func(string) string, build function.HTTPBuilder, log *slog.Logger) (string, error) {
	return st.started(func(ready func(string)) error {
		return function.RunHTTPWithLogger(ctx, name, getenv, build, log.With("function", name), ready)
	})
}

// started runs serve in the background and waits for its address.
func (st *Stack) started(serve func(ready func(string)) error) (string, error) {
	ready := make(chan string, 1)
	errc := make(chan error, 1)
	st.wg.Add(1)
	go func() {
		defer st.wg.Done()
		errc <- serve(func(addr string) { ready <- addr })
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

// PublishSigned signs ev as the party allowed to send its type would (the
// ingress, the app gateway, fraud or a reviewer) and puts it on the Broker.
// A type nobody signs (a tick) is published as it is.
func (st *Stack) PublishSigned(ctx context.Context, ev cloudevents.Event) error {
	if _, signed := signing.Senders[ev.Type()]; signed {
		if err := st.Keys.Sign(&ev, time.Now()); err != nil {
			return err
		}
	}
	return st.Router.Publish(ctx, ev)
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
	// Before the Wait: the simulator's server is one of the goroutines.
	errs = append(errs, st.stopOperator())
	st.cancel()
	st.wg.Wait()
	if st.ddb != nil {
		errs = append(errs, st.ddb.Stop())
	}
	return errors.Join(errs...)
}
