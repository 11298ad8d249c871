package topup

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/sebelas/sebelas/internal/function"
	"github.com/sebelas/sebelas/internal/ledger"
	"github.com/sebelas/sebelas/internal/msisdn"
	"github.com/sebelas/sebelas/internal/operator"
	"github.com/sebelas/sebelas/internal/signing"
	"github.com/sebelas/sebelas/internal/table"
)

// Environment of the top-up function, beside the table's (AWS_REGION,
// AWS_ENDPOINT_URL_DYNAMODB, SEBELAS_TABLE).
const (
	// EnvOperatorURL is the aggregator API's base URL (required).
	EnvOperatorURL = "SEBELAS_OPERATOR_URL"
	// EnvOperatorAPIKey is its bearer token (a Secret on a cluster).
	EnvOperatorAPIKey = "SEBELAS_OPERATOR_API_KEY"
	// EnvOperatorTimeoutMs bounds one submit (default 8000).
	EnvOperatorTimeoutMs = "SEBELAS_OPERATOR_TIMEOUT_MS"
	// EnvPendingMaxMs is when reconcile gives up (default 900000).
	EnvPendingMaxMs = "SEBELAS_TOPUP_PENDING_MAX_MS"
	// EnvRequestTTLMs, EnvStaleHeldMs and EnvRecheckMs tune the other
	// windows of Config (defaults 60000, 30000, 30000); a run that must
	// settle every top-up within minutes (the chaos test) shortens them.
	EnvRequestTTLMs = "SEBELAS_TOPUP_REQUEST_TTL_MS"
	EnvStaleHeldMs  = "SEBELAS_TOPUP_STALE_HELD_MS"
	EnvRecheckMs    = "SEBELAS_TOPUP_RECHECK_MS"
	// EnvBreakerFailures and EnvBreakerOpenMs tune the per-operator
	// breakers (defaults 5 and 30000).
	EnvBreakerFailures = "SEBELAS_OPERATOR_BREAKER_FAILURES"
	EnvBreakerOpenMs   = "SEBELAS_OPERATOR_BREAKER_OPEN_MS"
	// EnvProducts names a catalog file replacing the embedded one.
	EnvProducts = "SEBELAS_TOPUP_PRODUCTS"
	// EnvSink is where reconcile publishes outcomes (Knative's K_SINK).
	EnvSink = "K_SINK"
)

// ConfigFromEnv reads the timing and breaker settings.
func ConfigFromEnv(getenv func(string) string) (Config, operator.BreakerConfig, error) {
	c := DefaultConfig()
	b := operator.BreakerConfig{Failures: operator.BreakerFailuresDefault, OpenMs: operator.BreakerOpenMsDefault}
	for _, v := range []struct {
		name string
		dst  *int
	}{
		{EnvOperatorTimeoutMs, &c.OperatorTimeoutMs},
		{EnvPendingMaxMs, &c.PendingMaxMs},
		{EnvRequestTTLMs, &c.RequestTTLMs},
		{EnvStaleHeldMs, &c.StaleHeldMs},
		{EnvRecheckMs, &c.RecheckMs},
		{EnvBreakerFailures, &b.Failures},
		{EnvBreakerOpenMs, &b.OpenMs},
	} {
		if s := getenv(v.name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil {
				return c, b, fmt.Errorf("%s=%.32q: not an integer", v.name, s)
			}
			*v.dst = n
		}
	}
	// A longer operator timeout pushes the windows that must exceed it,
	// unless they are set.
	if getenv(EnvStaleHeldMs) == "" {
		c.StaleHeldMs = max(c.StaleHeldMs, c.OperatorTimeoutMs+StaleHeldMsDefault-OperatorTimeoutMsDefault)
	}
	if getenv(EnvRequestTTLMs) == "" {
		c.RequestTTLMs = max(c.RequestTTLMs, c.OperatorTimeoutMs+RequestTTLMsDefault-OperatorTimeoutMsDefault)
	}
	if err := c.Validate(); err != nil {
		return c, b, err
	}
	if err := b.Validate(); err != nil {
		return c, b, fmt.Errorf("operator %w", err)
	}
	return c, b, nil
}

// Build reads the top-up function's configuration and wires its handler.
// It does no network I/O (it may read the catalog file).
func Build(ctx context.Context, getenv func(string) string, log *slog.Logger) (function.Handler, error) {
	tc, err := table.ConfigFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	cfg, bcfg, err := ConfigFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	// Before the handler reports ready, not on the first top-up.
	msisdn.Warm()
	catalog := DefaultCatalog()
	if path := getenv(EnvProducts); path != "" {
		if catalog, err = LoadCatalog(path); err != nil {
			return nil, fmt.Errorf("%s: %w", EnvProducts, err)
		}
	}
	opURL := getenv(EnvOperatorURL)
	if opURL == "" {
		return nil, fmt.Errorf("%s is required: the top-up aggregator's base URL (`sebelas operator-sim` serves one)", EnvOperatorURL)
	}
	adapter, err := operator.NewHTTP(opURL, getenv(EnvOperatorAPIKey))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvOperatorURL, err)
	}
	breakers := operator.NewBreakers(bcfg, nil)
	h := &Handler{Catalog: catalog, Operator: operator.Guard(adapter, breakers), Breakers: breakers, Config: cfg, Log: log}
	if sink := getenv(EnvSink); sink != "" {
		if h.Publisher, err = NewSinkPublisher(sink); err != nil {
			return nil, fmt.Errorf("%s: %w", EnvSink, err)
		}
	} else if log != nil {
		log.Warn("no " + EnvSink + ": reconcile records outcomes but publishes no events")
	}
	// Required, as for every function that moves money: without keys no
	// screened or reviewed event could be told from a forgery.
	if h.Verifier, err = signing.VerifierFromEnv(getenv, signing.RoleFraud, signing.RoleReview); err != nil {
		return nil, err
	}
	db, err := table.NewClient(ctx, tc)
	if err != nil {
		return nil, err
	}
	h.Store = NewStore(db, tc.Table, ledger.New(db, tc.Table, nil), nil)
	return h.Handle, nil
}
