package function

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"
)

// TestHeaderLimit: the server refuses headers well over headerBytesMax
// (net/http allows a little slack above MaxHeaderBytes, so the edge itself
// belongs to net/http; what is ours is that a limit is set and holds).
func TestHeaderLimit(t *testing.T) {
	srv, err := NewServer(context.Background(), "test", func(context.Context, cloudevents.Event) (*cloudevents.Event, error) {
		return nil, nil
	}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv)
	ts.Config = HTTPServer(srv)
	ts.Start()
	defer ts.Close()
	send := func(headerBytes int) int {
		req, _ := http.NewRequest(http.MethodPost, ts.URL, strings.NewReader(`{}`))
		req.Header.Set("Ce-Specversion", "1.0")
		req.Header.Set("Ce-Type", "dev.sebelas.test")
		req.Header.Set("Ce-Source", "/test")
		req.Header.Set("Ce-Id", "1")
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Pad", strings.Repeat("p", headerBytes))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := send(headerBytesMax / 2); got != http.StatusOK {
		t.Errorf("headers of %d bytes: %d, want 200", headerBytesMax/2, got)
	}
	if got := send(2 * headerBytesMax); got != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("headers of %d bytes: %d, want 431", 2*headerBytesMax, got)
	}
}
