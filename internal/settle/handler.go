package settle

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/function"
	"github.com/sebelas/sebelas/internal/market"
	"github.com/sebelas/sebelas/internal/table"
)

// Source is the CloudEvent source of the settle function's events.
const Source = events.SourcePrefix + "settle"

// Environment of the settle function beyond the table's.
const (
	// EnvSink is where settlement.completed events are published: the
	// Broker's ingress. K_SINK is the name Knative's SinkBinding injects;
	// infra/knative/settle.yaml sets it, `sebelas dev` points it at the
	// local Broker.
	EnvSink = "K_SINK"
	// EnvBudgetMs bounds the work of one delivery (see BudgetMsDefault).
	EnvBudgetMs = "SEBELAS_SETTLE_BUDGET_MS"
)

const (
	// BudgetMsDefault is how long one delivery of settlement.due works
	// before it checkpoints and replies a continuation. It stays under the
	// local Broker's 30 s attempt timeout and far under the Service's
	// timeoutSeconds, so a delivery is never cut by a timeout and retried
	// while it is still working.
	BudgetMsDefault = 20_000
	budgetMsMin     = 1_000
	budgetMsMax     = 540_000 // under settle.yaml's timeoutSeconds: 600
	// publishTimeoutMs bounds one send of settlement.completed to the
	// Broker, which answers 202 as soon as the event is enqueued.
	publishTimeoutMs = 5_000
)

// Publisher sends one event to the Broker.
type Publisher interface {
	Publish(ctx context.Context, ev cloudevents.Event) error
}

// Handler handles settlement.due events: PingSource ticks and operators'
// hand-published re-runs.
//
// Why publish rather than reply: a Knative reply is ONE event, and a
// market-day has one settlement.completed per merchant, which the schema and
// the consumers (payouts, merchant statements) want per merchant. So each
// settlement with a new version is published to the Broker (K_SINK) before
// its outbox entry is removed, with an id derived from the settlement id and
// version: a resumed or repeated run publishes the same event again and
// consumers that dedupe on source+id see it once. The reply slot carries a continuation
// instead: when the delivery's budget runs out before the day is done, the
// reply is a settlement.due for the same market and business date, which the
// settle-settlement-due Trigger brings back with a fresh retry budget, and
// the run resumes at its checkpoint. Done, the reply is empty.
//
// A settlement.due for a day whose run is done moves no money (a second
// tick, a redelivery, a forged tick: whoever sends it, a run only settles
// units of closed days that are due anyway, each once, in bounded work per
// delivery); the operator's re-run of a day is `sebelas settle run`, which
// starts a new pass over it (settle.RunOptions.Restart).
type Handler struct {
	Store     *Store
	Publisher Publisher
	BudgetMs  int64
	Now       func() time.Time // nil: time.Now
	Log       *slog.Logger
}

// Handle is a function.Handler.
func (h *Handler) Handle(ctx context.Context, ev cloudevents.Event) (*cloudevents.Event, error) {
	ev, err := events.FromTick(ev)
	if err != nil {
		return nil, err
	}
	if ev.Type() != events.TypeSettlementDue {
		return nil, fault.Permanentf("unexpected_type", "settle does not handle %.64q", ev.Type())
	}
	var due events.SettlementDue
	if err := events.Decode(ev, &due); err != nil {
		return nil, err
	}
	m, err := market.ByCode(due.Market)
	if err != nil {
		return nil, err
	}
	if due.TimeZone != m.Zone {
		return nil, fault.Permanentf("invalid_event", "market %s is in %s, not %.40q", m.Code, m.Zone, due.TimeZone)
	}
	now := time.Now()
	if h.Now != nil {
		now = h.Now()
	}
	date := due.BusinessDate
	if date == "" {
		// A tick settles the day before the one it fires in, in the
		// market's zone. The tick's own time, not the time of this
		// delivery, so a tick retried after midnight settles the same day.
		tick := ev.Time()
		if tick.IsZero() {
			tick = now
		}
		date = PreviousDate(m, tick)
	}
	if err := CheckClosed(m, date, now); err != nil {
		return nil, err
	}
	budget := h.BudgetMs
	if budget == 0 {
		budget = BudgetMsDefault
	}
	out, err := h.Store.Run(ctx, m, date, RunOptions{
		Deadline:   now.Add(time.Duration(budget) * time.Millisecond),
		OnMerchant: h.publish,
	})
	if h.Log != nil {
		h.Log.Info("settlement", "market", m.Code, "business_date", date, "pass", out.Pass, "done", out.Done,
			"already_done", out.AlreadyDone, "shard", out.Shard, "units", out.Units, "batches", out.Batches,
			"announced", out.Announced, "err", err)
	}
	if err != nil {
		return nil, err
	}
	if out.Done {
		return nil, nil
	}
	next, err := events.NewEvent(events.TypeSettlementDue, Source,
		events.SettlementDue{Market: m.Code, TimeZone: m.Zone, BusinessDate: date})
	if err != nil {
		return nil, fmt.Errorf("build continuation: %w", err)
	}
	// Derived from the delivery it continues: a redelivery of this event
	// replies the same id, and each step of the chain has its own.
	next.SetID(events.ResultID(events.DeliveryKey(ev), events.TypeSettlementDue))
	next.SetSubject(m.Code + "/" + date)
	return &next, nil
}

// publish sends one merchant's settlement.completed.
func (h *Handler) publish(ctx context.Context, r Result) error {
	ev, err := CompletedEvent(r)
	if err != nil {
		return err
	}
	return h.Publisher.Publish(ctx, ev)
}

// CompletedEvent is a merchant's settlement.completed as of one version,
// with the same id every time it is built for that version: a settlement
// that late units add to is announced again, as a new event whose totals
// include them.
func CompletedEvent(r Result) (cloudevents.Event, error) {
	ev, err := events.NewEvent(events.TypeSettlementCompleted, Source, r.Completed())
	if err != nil {
		return ev, fmt.Errorf("build settlement.completed: %w", err)
	}
	ev.SetID(events.ResultID(versionID(r), events.TypeSettlementCompleted))
	ev.SetTime(r.At)
	ev.SetSubject(r.SettlementID)
	return ev, nil
}

// HTTPPublisher publishes CloudEvents over HTTP (binary mode) to one URL.
type HTTPPublisher struct {
	client cloudevents.Client
}

// NewHTTPPublisher returns a publisher to target, an http(s) URL.
func NewHTTPPublisher(target string) (*HTTPPublisher, error) {
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("sink %.200q is not an http(s) URL", target)
	}
	p, err := cloudevents.NewHTTP(cloudevents.WithTarget(target),
		cehttp.WithClient(http.Client{Timeout: publishTimeoutMs * time.Millisecond}))
	if err != nil {
		return nil, err
	}
	c, err := cloudevents.NewClient(p)
	if err != nil {
		return nil, err
	}
	return &HTTPPublisher{client: c}, nil
}

// Publish sends ev and waits for the sink's acknowledgement. A failure is
// transient: the run stops before the merchant and a retry sends again.
func (p *HTTPPublisher) Publish(ctx context.Context, ev cloudevents.Event) error {
	ctx, cancel := context.WithTimeout(ctx, publishTimeoutMs*time.Millisecond)
	defer cancel()
	if res := p.client.Send(ctx, ev); !cloudevents.IsACK(res) {
		return fault.Transient("publish_failed", fmt.Errorf("publish %s: %w", ev.Type(), res))
	}
	return nil
}

// Build reads the settle function's configuration and wires its handler.
// It does no network I/O.
func Build(ctx context.Context, getenv func(string) string, log *slog.Logger) (function.Handler, error) {
	tc, err := table.ConfigFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	sink := getenv(EnvSink)
	if sink == "" {
		// Fail at start, not at the first tick: without a sink every
		// merchant's settlement.completed would be lost or block the run.
		return nil, fmt.Errorf("%s is not set: settle publishes settlement.completed to the Broker's ingress URL", EnvSink)
	}
	pub, err := NewHTTPPublisher(sink)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvSink, err)
	}
	budget := int64(BudgetMsDefault)
	if v := getenv(EnvBudgetMs); v != "" {
		budget, err = strconv.ParseInt(v, 10, 64)
		if err != nil || budget < budgetMsMin || budget > budgetMsMax {
			return nil, fmt.Errorf("%s=%.20q: want %d..%d", EnvBudgetMs, v, budgetMsMin, budgetMsMax)
		}
	}
	db, err := table.NewClient(ctx, tc)
	if err != nil {
		return nil, err
	}
	h := &Handler{Store: New(db, tc.Table, Options{}), Publisher: pub, BudgetMs: budget, Log: log}
	return h.Handle, nil
}
