package function

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/fault"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// post sends a binary-mode CloudEvent.
func post(t *testing.T, srv http.Handler, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Ce-Type", "dev.sebelas.test")
	req.Header.Set("Ce-Source", "/test")
	req.Header.Set("Ce-Id", "1")
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	return rec
}

func TestStatusMapping(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"done", nil, http.StatusOK},
		{"permanent goes to dead letter", fault.Permanent("invalid_event", errors.New("bad")), http.StatusBadRequest},
		{"throttled is retried", fault.Throttled("throttled", errors.New("slow down")), http.StatusTooManyRequests},
		{"transient is retried", fault.Transient("storage_down", errors.New("down")), http.StatusServiceUnavailable},
		{"unknown error is retried, never dropped", errors.New("boom"), http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, err := NewServer(context.Background(), "test", func(context.Context, cloudevents.Event) (*cloudevents.Event, error) {
				return nil, tt.err
			}, quietLog())
			if err != nil {
				t.Fatal(err)
			}
			rec := post(t, srv, `{}`)
			if diff := cmp.Diff(tt.want, rec.Code); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReplyAndHealth(t *testing.T) {
	srv, err := NewServer(context.Background(), "test", func(_ context.Context, ev cloudevents.Event) (*cloudevents.Event, error) {
		r := cloudevents.NewEvent()
		r.SetID("reply-1")
		r.SetType("dev.sebelas.test.done")
		r.SetSource("/sebelas/test")
		if err := r.SetData(cloudevents.ApplicationJSON, map[string]string{"got": ev.ID()}); err != nil {
			return nil, err
		}
		return &r, nil
	}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	rec := post(t, srv, `{}`)
	got := map[string]string{
		"status": http.StatusText(rec.Code), "type": rec.Header().Get("Ce-Type"),
		"id": rec.Header().Get("Ce-Id"), "body": strings.TrimSpace(rec.Body.String()),
	}
	want := map[string]string{"status": "OK", "type": "dev.sebelas.test.done", "id": "reply-1", "body": `{"got":"1"}`}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("reply (-want +got):\n%s", diff)
	}

	req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
	rr := httptest.NewRecorder()
	srv.ServeHTTP(rr, req)
	if rr.Code != http.StatusOK {
		t.Errorf("GET /healthz = %d", rr.Code)
	}
}

func TestBodyLimit(t *testing.T) {
	called := false
	srv, err := NewServer(context.Background(), "test", func(context.Context, cloudevents.Event) (*cloudevents.Event, error) {
		called = true
		return nil, nil
	}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	big := `{"x":"` + string(bytes.Repeat([]byte("a"), requestBytesMax)) + `"}`
	rec := post(t, srv, big)
	if rec.Code != http.StatusRequestEntityTooLarge || called {
		t.Errorf("oversized body: status %d, handler called %v; want 413 and not called", rec.Code, called)
	}
	if requestBytesMax <= events.BodyBytesMax {
		t.Errorf("requestBytesMax %d must exceed events.BodyBytesMax %d", requestBytesMax, events.BodyBytesMax)
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	c, err := ConfigFromEnv(env(nil))
	if err != nil || c.Port != 8080 {
		t.Fatalf("defaults = %+v, %v", c, err)
	}
	for _, bad := range []map[string]string{
		{"PORT": "http"}, {"PORT": "70000"}, {"SEBELAS_SHUTDOWN_TIMEOUT_MS": "5"}, {"SEBELAS_LOG_LEVEL": "loud"},
	} {
		if _, err := ConfigFromEnv(env(bad)); err == nil {
			t.Errorf("ConfigFromEnv(%v) = nil error, want failure", bad)
		}
	}
}
