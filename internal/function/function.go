// Package function is the runtime every sebelas function shares: it serves
// CloudEvents over HTTP (binary and structured mode) on $PORT, answers
// GET /healthz, logs as JSON with log/slog, maps error kinds to the status
// codes the Broker acts on (in one place: fault.Status), sends reply events
// back on Knative's reply path and stops cleanly on SIGTERM.
//
// A function's main is a few lines:
//
//	func main() { function.Main("charge", build) }
//
// where build reads the function's own configuration and returns its Handler.
package function

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"knative.dev/pkg/signals"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/telemetry"
)

// Limits on what the HTTP server accepts and how long it waits. Knative's
// queue-proxy sits in front on a cluster; these hold locally and when the
// proxy is bypassed.
const (
	// Headers and body of one event: events.BodyBytesMax for the data plus
	// room for structured-mode envelopes.
	requestBytesMax          = events.BodyBytesMax + 16<<10
	headerBytesMax           = 32 << 10
	readTimeoutMs            = 10_000
	writeTimeoutMs           = 30_000
	idleTimeoutMs            = 120_000
	shutdownTimeoutMsDefault = 20_000 // below Knative's default 30 s grace period
	portDefault              = 8080
)

// Handler handles one event. It returns the reply event (nil for none) or an
// error whose fault kind decides the status code. A recognised duplicate is
// not an error: the handler replays the original outcome as its reply.
type Handler func(ctx context.Context, ev cloudevents.Event) (*cloudevents.Event, error)

// Config is the runtime's own configuration, read from the environment.
type Config struct {
	Port              int
	ShutdownTimeoutMs int
	LogLevel          slog.Level
}

// ConfigFromEnv reads PORT (Knative sets it), SEBELAS_SHUTDOWN_TIMEOUT_MS and
// SEBELAS_LOG_LEVEL (debug, info, warn, error).
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{Port: portDefault, ShutdownTimeoutMs: shutdownTimeoutMsDefault, LogLevel: slog.LevelInfo}
	if v := getenv("PORT"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 0 || p > 65535 {
			return c, fmt.Errorf("PORT=%q: want a port number 0..65535", v)
		}
		c.Port = p
	}
	if v := getenv("SEBELAS_SHUTDOWN_TIMEOUT_MS"); v != "" {
		ms, err := strconv.Atoi(v)
		if err != nil || ms < 100 || ms > 300_000 {
			return c, fmt.Errorf("SEBELAS_SHUTDOWN_TIMEOUT_MS=%q: want 100..300000", v)
		}
		c.ShutdownTimeoutMs = ms
	}
	if v := getenv("SEBELAS_LOG_LEVEL"); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			return c, fmt.Errorf("SEBELAS_LOG_LEVEL=%q: %w", v, err)
		}
	}
	return c, nil
}

// Builder builds a function's handler once at start. It should do no network
// I/O: start-up is on the cold-start path of every scale-from-zero.
type Builder func(ctx context.Context, env func(string) string, log *slog.Logger) (Handler, error)

// Main is the whole of a function's main: a signal-aware context, config from
// the environment, build, serve. It exits non-zero on a start-up failure.
func Main(name string, build Builder) {
	ctx := signals.NewContext()
	if err := Run(ctx, name, os.Getenv, build, nil); err != nil {
		slog.Error("function stopped", "function", name, "err", err)
		os.Exit(1)
	}
}

// Run serves until ctx is done. ready, if not nil, receives the bound address
// once the listener accepts connections (tests and `sebelas dev` use it with
// PORT=0).
func Run(ctx context.Context, name string, getenv func(string) string, build Builder, ready func(addr string)) error {
	cfg, err := ConfigFromEnv(getenv)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: cfg.LogLevel})).With("function", name)
	return RunWithLogger(ctx, name, getenv, build, log, ready)
}

// RunWithLogger is Run with the caller's logger (`sebelas dev` runs every
// function in one process and one log stream).
func RunWithLogger(ctx context.Context, name string, getenv func(string) string, build Builder, log *slog.Logger, ready func(addr string)) error {
	cfg, err := ConfigFromEnv(getenv)
	if err != nil {
		return err
	}
	h, err := build(ctx, getenv, log)
	if err != nil {
		return fmt.Errorf("build %s: %w", name, err)
	}
	srv, err := NewServer(ctx, name, h, log)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, srv, log, ready)
}

// HTTPServer returns an http.Server for h with the runtime's timeouts and
// header limit (for callers that run a function's handler themselves, like
// the chaos run that crashes and restarts it).
func HTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readTimeoutMs * time.Millisecond,
		ReadTimeout:       readTimeoutMs * time.Millisecond,
		WriteTimeout:      writeTimeoutMs * time.Millisecond,
		IdleTimeout:       idleTimeoutMs * time.Millisecond,
		MaxHeaderBytes:    headerBytesMax,
	}
}

// serve listens on cfg.Port and serves h until ctx is done, then drains.
func serve(ctx context.Context, cfg Config, h http.Handler, log *slog.Logger, ready func(addr string)) error {
	ln, err := net.Listen("tcp", fmt.Sprintf(":%d", cfg.Port))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	hs := HTTPServer(h)
	log.Info("serving", "addr", ln.Addr().String())
	if ready != nil {
		ready(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Drain: stop accepting, let in-flight events finish so no handler is
	// cut between its DynamoDB write and its reply (a cut reply is safe, the
	// Broker redelivers and the handler replays, but it costs a retry).
	sctx, cancel := context.WithTimeout(context.Background(), time.Duration(cfg.ShutdownTimeoutMs)*time.Millisecond)
	defer cancel()
	err = hs.Shutdown(sctx)
	log.Info("stopped", "err", err)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// NewServer returns the function's HTTP handler: CloudEvents on every path
// but /healthz and /metrics (internal/telemetry). The runtime reads the event itself (receive) instead of the
// SDK's receive handler, so that every input that can never succeed is
// refused with 400, 413 or 415 before the handler runs, never 5xx (which the
// Broker would retry for minutes).
func NewServer(ctx context.Context, name string, h Handler, log *slog.Logger) (http.Handler, error) {
	if h == nil {
		panic("function: NewServer without a handler")
	}
	serve := adapt(name, h, log)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", telemetry.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST a CloudEvent", http.StatusMethodNotAllowed)
			return
		}
		serve(w, r)
	}))
	return mux, nil
}

// adapt turns a Handler into an http.HandlerFunc and is the one place where
// an error becomes a status code (fault.Status), for input refused by
// receive as for the handler's own errors.
func adapt(name string, h Handler, log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx := r.Context()
		ev, err := receive(w, r)
		telemetry.EventReceived(name, ev.Type()) // "" for input refused before it was an event
		var reply *cloudevents.Event
		if err == nil {
			reply, err = h(ctx, ev)
		}
		status := fault.Status(err)
		telemetry.EventHandled(name, ev.Type(), status, time.Since(start))
		attrs := []any{"type", ev.Type(), "source", ev.Source(), "id", ev.ID(), "status", status, "ms", time.Since(start).Milliseconds()}
		if err != nil {
			attrs = append(attrs, "kind", fault.KindOf(err).String(), "reason", fault.ReasonOf(err), "err", err.Error())
			if fault.IsPermanent(err) {
				log.Warn("event rejected", attrs...)
			} else {
				log.Warn("event failed, retry expected", attrs...)
			}
		} else if reply != nil {
			attrs = append(attrs, "reply", reply.Type())
			countOutcome(name, reply)
		}
		if err == nil {
			log.Debug("event handled", attrs...)
		}
		if werr := respond(ctx, w, reply, err); werr != nil {
			log.Warn("answer not written", "function", name, "err", werr)
		}
	}
}
