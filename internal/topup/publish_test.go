package topup_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/topup"
)

func TestSinkPublisher(t *testing.T) {
	var status atomic.Int32
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.Header.Get("Ce-Type") + " " + r.Header.Get("Ce-Id"))
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	p, err := topup.NewSinkPublisher(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := events.NewEvent(events.TypeTopupReconcile, topup.Source, events.TopupReconcile{})
	if err != nil {
		t.Fatal(err)
	}
	ev.SetID("ev-1")
	status.Store(http.StatusAccepted)
	if err := p.Publish(context.Background(), ev); err != nil {
		t.Errorf("202: %v", err)
	}
	if got.Load() != events.TypeTopupReconcile+" ev-1" {
		t.Errorf("sink received %v", got.Load())
	}
	status.Store(http.StatusServiceUnavailable)
	if err := p.Publish(context.Background(), ev); err == nil {
		t.Error("a 503 from the sink counted as published")
	}
	for _, bad := range []string{"", "broker:8080", "ftp://x/"} {
		if _, err := topup.NewSinkPublisher(bad); err == nil {
			t.Errorf("NewSinkPublisher(%q) accepted", bad)
		}
	}
}
