package function

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"

	"knative.dev/pkg/signals"
)

// HTTPBuilder builds a function that speaks plain HTTP instead of
// CloudEvents: the marketplace ingress, which answers 401/403 and serves
// /metrics, things a CloudEvents Handler cannot express. Like Builder it
// should do no network I/O. The handler gets every path; the runtime adds
// nothing but the server limits and the drain on SIGTERM, so the handler
// serves its own /healthz.
type HTTPBuilder func(ctx context.Context, env func(string) string, log *slog.Logger) (http.Handler, error)

// MainHTTP is Main for an HTTPBuilder.
func MainHTTP(name string, build HTTPBuilder) {
	ctx := signals.NewContext()
	cfg, err := ConfigFromEnv(os.Getenv)
	if err != nil {
		slog.Error("function stopped", "function", name, "err", err)
		os.Exit(1)
	}
	log := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: cfg.LogLevel})).With("function", name)
	if err := RunHTTPWithLogger(ctx, name, os.Getenv, build, log, nil); err != nil {
		log.Error("function stopped", "err", err)
		os.Exit(1)
	}
}

// RunHTTPWithLogger is RunWithLogger for an HTTPBuilder: same PORT, same
// server limits and timeouts, same drain.
func RunHTTPWithLogger(ctx context.Context, name string, getenv func(string) string, build HTTPBuilder, log *slog.Logger, ready func(addr string)) error {
	cfg, err := ConfigFromEnv(getenv)
	if err != nil {
		return err
	}
	h, err := build(ctx, getenv, log)
	if err != nil {
		return fmt.Errorf("build %s: %w", name, err)
	}
	return serve(ctx, cfg, h, log, ready)
}
