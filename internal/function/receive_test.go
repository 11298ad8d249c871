package function

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/google/go-cmp/cmp"
)

// unsized hides the length of a body: the request goes out chunked, with
// no Content-Length, and only reading finds it too large.
type unsized struct{ io.Reader }

func binaryHeaders(over map[string]string) map[string]string {
	h := map[string]string{
		"Ce-Specversion": "1.0", "Ce-Type": "dev.sebelas.test", "Ce-Source": "/test", "Ce-Id": "1",
		"Content-Type": "application/json",
	}
	for k, v := range over {
		if v == "<none>" {
			delete(h, k)
			continue
		}
		h[k] = v
	}
	return h
}

var structuredHeaders = map[string]string{"Content-Type": "application/cloudevents+json"}

func envelope(extra string) string {
	return `{"specversion":"1.0","type":"dev.sebelas.test","source":"/test","id":"1"` + extra + `}`
}

// TestContractEdges: every event that can never succeed gets one
// documented 4xx answer (400, 413 or 415, never 5xx, which the Broker would
// retry for minutes) and the handler never runs, so nothing is written.
func TestContractEdges(t *testing.T) {
	deep := strings.Repeat("[", 20_000) + strings.Repeat("]", 20_000) // 40 KB: under the size limit
	tests := []struct {
		name    string
		headers map[string]string
		body    io.Reader
		want    int
	}{
		{"good binary event", binaryHeaders(nil), strings.NewReader(`{}`), http.StatusOK},
		{"good structured event", structuredHeaders, strings.NewReader(envelope(`,"data":{"a":1}`)), http.StatusOK},
		{"good structured data_base64", structuredHeaders, strings.NewReader(envelope(`,"data_base64":"e30="`)), http.StatusOK},
		{"empty ce-id", binaryHeaders(map[string]string{"Ce-Id": ""}), strings.NewReader(`{}`), http.StatusBadRequest},
		{"empty id in structured", structuredHeaders, strings.NewReader(`{"specversion":"1.0","type":"t","source":"/s","id":""}`), http.StatusBadRequest},
		{"missing ce-type", binaryHeaders(map[string]string{"Ce-Type": "<none>"}), strings.NewReader(`{}`), http.StatusBadRequest},
		{"truncated structured JSON", structuredHeaders, strings.NewReader(envelope(`,"data":{"a":`)[:40]), http.StatusBadRequest},
		{"bad data_base64", structuredHeaders, strings.NewReader(envelope(`,"data_base64":"%%%not base64"`)), http.StatusBadRequest},
		{"structured nested 20,000 deep", structuredHeaders, strings.NewReader(envelope(`,"data":` + deep)), http.StatusBadRequest},
		{"binary data nested 20,000 deep", binaryHeaders(nil), strings.NewReader(deep), http.StatusBadRequest},
		{"data_base64 nested deep", structuredHeaders, strings.NewReader(envelope(`,"data_base64":"` + b64(deep) + `"`)), http.StatusBadRequest},
		{"invalid UTF-8 in binary data", binaryHeaders(nil), strings.NewReader("{\"d\":\"\xff\xfe\"}"), http.StatusBadRequest},
		{"invalid UTF-8 in an attribute header", binaryHeaders(map[string]string{"Ce-Subject": "ch-\xff"}), strings.NewReader(`{}`), http.StatusBadRequest},
		{"invalid UTF-8 in structured attribute", structuredHeaders, strings.NewReader(envelope(",\"subject\":\"ch-\xff\"")), http.StatusBadRequest},
		{"invalid UTF-8 in data_base64", structuredHeaders, strings.NewReader(envelope(`,"data_base64":"/w=="`)), http.StatusBadRequest},
		{"10 MB chunked body", binaryHeaders(nil), unsized{strings.NewReader(strings.Repeat("a", 10<<20))}, http.StatusRequestEntityTooLarge},
		{"10 MB structured chunked", structuredHeaders, unsized{strings.NewReader(strings.Repeat("a", 10<<20))}, http.StatusRequestEntityTooLarge},
		{"missing ce-specversion", binaryHeaders(map[string]string{"Ce-Specversion": "<none>"}), strings.NewReader(`{}`), http.StatusUnsupportedMediaType},
		{"unknown ce-specversion", binaryHeaders(map[string]string{"Ce-Specversion": "9.9"}), strings.NewReader(`{}`), http.StatusUnsupportedMediaType},
		{"structured without specversion", structuredHeaders, strings.NewReader(`{"type":"t","source":"/s","id":"1"}`), http.StatusUnsupportedMediaType},
		{"structured unknown specversion", structuredHeaders, strings.NewReader(`{"specversion":"0.1","type":"t","source":"/s","id":"1"}`), http.StatusUnsupportedMediaType},
		{"batch mode", map[string]string{"Content-Type": "application/cloudevents-batch+json"}, strings.NewReader(`[]`), http.StatusUnsupportedMediaType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			srv, err := NewServer(context.Background(), "test", func(context.Context, cloudevents.Event) (*cloudevents.Event, error) {
				calls++
				return nil, nil
			}, quietLog())
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodPost, "/", tt.body)
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, req)
			wantCalls := 0
			if tt.want == http.StatusOK {
				wantCalls = 1
			}
			got := []int{rec.Code, calls}
			if diff := cmp.Diff([]int{tt.want, wantCalls}, got); diff != "" {
				t.Errorf("[status, handler calls] (-want +got):\n%s\nbody: %.200s", diff, rec.Body.String())
			}
		})
	}
}

// FuzzReceive: whatever the body and mode, the receiver answers without
// panicking and never with 5xx when the handler succeeds.
func FuzzReceive(f *testing.F) {
	f.Add(false, []byte(`{}`))
	f.Add(true, []byte(envelope(`,"data":{"a":1}`)))
	f.Add(true, []byte(envelope(`,"data_base64":"e30="`)))
	f.Add(true, []byte(`{"specversion":"1.0","id":`))
	srv, err := NewServer(context.Background(), "test", func(context.Context, cloudevents.Event) (*cloudevents.Event, error) {
		return nil, nil
	}, quietLog())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, structured bool, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(string(body)))
		headers := binaryHeaders(nil)
		if structured {
			headers = structuredHeaders
		}
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d for bad input", rec.Code)
		}
	})
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
