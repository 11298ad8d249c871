package router

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	eventingduckv1 "knative.dev/eventing/pkg/apis/duck/v1"

	"github.com/sebelas/sebelas/internal/devtools/manifests"
)

const realDir = "../../../infra/knative"

// received is one request a fake function saw.
type received struct {
	event  cloudevents.Event
	binary bool
	header http.Header
}

// fake is a fake function: it records each event and answers with respond.
type fake struct {
	t       *testing.T
	srv     *httptest.Server
	mu      sync.Mutex
	got     []received
	respond func(n int, ev cloudevents.Event, w http.ResponseWriter) // n counts from 1
}

func (f *fake) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	ev, err := binding.ToEvent(req.Context(), cehttp.NewMessageFromHttpRequest(req))
	if err != nil {
		f.t.Errorf("fake: not a CloudEvent: %v", err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.got = append(f.got, received{event: *ev, binary: req.Header.Get("Ce-Specversion") != "", header: req.Header.Clone()})
	n := len(f.got)
	f.mu.Unlock()
	if f.respond == nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	f.respond(n, *ev, w)
}

func (f *fake) events() []received {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]received(nil), f.got...)
}

// env is a Router over the real manifests with one fake per Service.
type env struct {
	set    *manifests.Set
	fakes  map[string]*fake
	router *Router
	sleeps *sleepLog
	dead   chan DeadLetter
}

type sleepLog struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleepLog) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleepLog) all() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

func newEnv(t *testing.T, set *manifests.Set, opts Options) *env {
	t.Helper()
	if set == nil {
		var err error
		if set, err = manifests.Load(realDir); err != nil {
			t.Fatal(err)
		}
	}
	e := &env{set: set, fakes: map[string]*fake{}, sleeps: &sleepLog{}, dead: make(chan DeadLetter, 100)}
	for _, svc := range set.Services {
		f := &fake{t: t}
		f.srv = httptest.NewServer(f)
		t.Cleanup(f.srv.Close)
		e.fakes[svc.Name] = f
	}
	if opts.Sleep == nil {
		opts.Sleep = e.sleeps.sleep
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	opts.OnDeadLetter = func(dl DeadLetter) { e.dead <- dl }
	r, err := New(set, func(name string) (string, bool) {
		f, ok := e.fakes[name]
		if !ok {
			return "", false
		}
		return f.srv.URL, true
	}, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	e.router = r
	return e
}

func (e *env) wait(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.router.Wait(ctx); err != nil {
		t.Fatalf("Wait: %v", err)
	}
}

func newEvent(typ, id string, data any) cloudevents.Event {
	ev := cloudevents.NewEvent()
	ev.SetID(id)
	ev.SetType(typ)
	ev.SetSource("/sebelas/test")
	if strings.HasSuffix(typ, ".screened") {
		ev.SetSource("/sebelas/fraud") // the screened Triggers take fraud's events only
	}
	_ = ev.SetData(cloudevents.ApplicationJSON, data)
	return ev
}

// replyWith answers 200 with ev in binary mode.
func replyWith(t *testing.T, w http.ResponseWriter, ev cloudevents.Event) {
	if err := cehttp.WriteResponseWriter(context.Background(), binding.ToMessage(&ev), http.StatusOK, w); err != nil {
		t.Errorf("write reply: %v", err)
	}
}

func status(code int, body string) func(int, cloudevents.Event, http.ResponseWriter) {
	return func(_ int, _ cloudevents.Event, w http.ResponseWriter) {
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}
}

func TestMatchingTriggerDeliversAndReplyIsRoutedOnward(t *testing.T) {
	e := newEnv(t, nil, Options{})
	e.fakes["fraud"].respond = func(_ int, in cloudevents.Event, w http.ResponseWriter) {
		replyWith(t, w, newEvent("dev.sebelas.charge.screened", "screened-"+in.ID(), map[string]any{"charge": json.RawMessage(in.Data())}))
	}
	e.fakes["charge"].respond = func(_ int, in cloudevents.Event, w http.ResponseWriter) {
		replyWith(t, w, newEvent("dev.sebelas.charge.succeeded", "ok-"+in.ID(), map[string]any{"charge_id": "c1"}))
	}
	if err := e.router.Publish(context.Background(), newEvent("dev.sebelas.charge.requested", "c1", map[string]any{"charge_id": "c1"})); err != nil {
		t.Fatal(err)
	}
	e.wait(t)

	fr := e.fakes["fraud"].events()
	if len(fr) != 1 || fr[0].event.Type() != "dev.sebelas.charge.requested" {
		t.Fatalf("fraud got %v", fr)
	}
	if !fr[0].binary || fr[0].header.Get("Prefer") != "reply" || fr[0].header.Get("Kn-Namespace") != "sebelas" {
		t.Errorf("fraud request: binary=%v headers=%v", fr[0].binary, fr[0].header)
	}
	if _, ok := fr[0].event.Extensions()[ttlExtension]; ok {
		t.Errorf("%s leaked to the subscriber", ttlExtension)
	}
	if _, ok := fr[0].event.Extensions()[arrivalExtension]; !ok {
		t.Errorf("%s missing", arrivalExtension)
	}
	ch := e.fakes["charge"].events()
	if len(ch) != 1 || ch[0].event.Type() != "dev.sebelas.charge.screened" || ch[0].event.ID() != "screened-c1" {
		t.Fatalf("charge got %v", ch)
	}
	for _, name := range []string{"refund", "topup", "settle", "dead-letter"} {
		if n := len(e.fakes[name].events()); n != 0 {
			t.Errorf("%s got %d events, want 0", name, n)
		}
	}
	st := e.router.Stats()
	if st.Received != 3 || st.Delivered != 2 || st.Replies != 2 || st.Retried != 0 || st.DeadLettered != 0 {
		t.Errorf("stats = %+v", st)
	}
	if ts := st.Triggers["fraud-charge-requested"]; ts.Matched != 1 || ts.Delivered != 1 || ts.Replies != 1 {
		t.Errorf("fraud-charge-requested stats = %+v", ts)
	}
}

func TestNonMatchingEventIsNotDelivered(t *testing.T) {
	e := newEnv(t, nil, Options{})
	// An outcome type no Trigger filters on, and a ping whose sebelastype
	// matches no Trigger.
	if err := e.router.Publish(context.Background(), newEvent("dev.sebelas.charge.succeeded", "x1", map[string]any{})); err != nil {
		t.Fatal(err)
	}
	ping := newEvent("dev.knative.sources.ping", "p1", map[string]any{})
	ping.SetExtension("sebelastype", "dev.sebelas.nothing")
	if err := e.router.Publish(context.Background(), ping); err != nil {
		t.Fatal(err)
	}
	e.wait(t)
	for name, f := range e.fakes {
		if n := len(f.events()); n != 0 {
			t.Errorf("%s got %d events, want 0", name, n)
		}
	}
	if st := e.router.Stats(); st.Received != 2 || st.Delivered != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestRetriesWithExponentialBackoffThenSucceeds(t *testing.T) {
	e := newEnv(t, nil, Options{})
	e.fakes["refund"].respond = func(n int, _ cloudevents.Event, w http.ResponseWriter) {
		if n <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}
	if err := e.router.Publish(context.Background(), newEvent("dev.sebelas.refund.requested", "r1", map[string]any{})); err != nil {
		t.Fatal(err)
	}
	e.wait(t)
	if n := len(e.fakes["refund"].events()); n != 3 {
		t.Fatalf("refund got %d attempts, want 3", n)
	}
	// backoffDelay PT0.2S, exponential: 0.2s * 2^0, 0.2s * 2^1.
	want := []time.Duration{200 * time.Millisecond, 400 * time.Millisecond}
	if got := e.sleeps.all(); !reflect.DeepEqual(got, want) {
		t.Errorf("backoff = %v, want %v", got, want)
	}
	st := e.router.Stats()
	if st.Retried != 2 || st.Delivered != 1 || st.DeadLettered != 0 {
		t.Errorf("stats = %+v", st)
	}
	if ts := st.Triggers["refund-refund-requested"]; ts.Retried != 2 || ts.Delivered != 1 {
		t.Errorf("trigger stats = %+v", ts)
	}
}

func TestExhaustedRetriesGoToDeadLetterWithExtensions(t *testing.T) {
	e := newEnv(t, nil, Options{})
	body := strings.Repeat("storage down; ", 100) // 1,400 bytes
	e.fakes["refund"].respond = status(http.StatusServiceUnavailable, body)
	if err := e.router.Publish(context.Background(), newEvent("dev.sebelas.refund.requested", "r2", map[string]any{"refund_id": "r2"})); err != nil {
		t.Fatal(err)
	}
	e.wait(t)

	if n := len(e.fakes["refund"].events()); n != 11 {
		t.Errorf("refund got %d attempts, want 1 + 10 retries", n)
	}
	var want []time.Duration
	for i := 0; i < 10; i++ {
		want = append(want, 200*time.Millisecond<<i)
	}
	if got := e.sleeps.all(); !reflect.DeepEqual(got, want) {
		t.Errorf("backoff = %v\nwant %v", got, want)
	}
	if want[9] != 102400*time.Millisecond {
		t.Errorf("last wait %v", want[9])
	}

	dls := e.fakes["dead-letter"].events()
	if len(dls) != 1 {
		t.Fatalf("dead-letter got %d events, want 1", len(dls))
	}
	ev := dls[0].event
	if ev.ID() != "r2" || ev.Type() != "dev.sebelas.refund.requested" {
		t.Errorf("dead letter is not the original event: %s %s", ev.Type(), ev.ID())
	}
	if dls[0].header.Get("Prefer") != "" {
		t.Errorf("dead letter asked for a reply")
	}
	ext := ev.Extensions()
	if fmt.Sprint(ext["knativeerrorcode"]) != "503" {
		t.Errorf("knativeerrorcode = %v", ext["knativeerrorcode"])
	}
	if fmt.Sprint(ext["knativeerrordest"]) != e.fakes["refund"].srv.URL {
		t.Errorf("knativeerrordest = %v, want %s", ext["knativeerrordest"], e.fakes["refund"].srv.URL)
	}
	data := fmt.Sprint(ext["knativeerrordata"])
	if len(data) != 1024 {
		t.Errorf("knativeerrordata has %d characters, want 1024 (truncated)", len(data))
	}
	dec, _ := base64.StdEncoding.DecodeString(data[:1020])
	if !strings.HasPrefix(body, string(dec)) || len(dec) == 0 {
		t.Errorf("knativeerrordata does not decode to the body: %q", dec)
	}

	dl := <-e.dead
	if dl.Trigger != "refund-refund-requested" || dl.StatusCode != 503 || dl.Attempts != 11 || dl.Sink != "Service dead-letter" || dl.SinkErr != nil {
		t.Errorf("dead letter = %+v", dl)
	}
	if !strings.Contains(dl.Reason, "retries exhausted") {
		t.Errorf("reason = %q", dl.Reason)
	}
	if got := e.router.DeadLetters(); len(got) != 1 || got[0].Event.ID() != "r2" {
		t.Errorf("DeadLetters() = %v", got)
	}
	if st := e.router.Stats(); st.DeadLettered != 1 || st.Retried != 10 || st.Triggers["refund-refund-requested"].DeadLettered != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestPermanentFailureDeadLettersWithoutRetry(t *testing.T) {
	e := newEnv(t, nil, Options{})
	e.fakes["charge"].respond = status(http.StatusBadRequest, `{"reason":"unknown_currency"}`)
	if err := e.router.Publish(context.Background(), newEvent("dev.sebelas.charge.screened", "s1", map[string]any{})); err != nil {
		t.Fatal(err)
	}
	e.wait(t)
	if n := len(e.fakes["charge"].events()); n != 1 {
		t.Errorf("charge got %d attempts, want 1", n)
	}
	if got := e.sleeps.all(); len(got) != 0 {
		t.Errorf("slept %v, want no backoff", got)
	}
	dls := e.fakes["dead-letter"].events()
	if len(dls) != 1 {
		t.Fatalf("dead-letter got %d events", len(dls))
	}
	ext := dls[0].event.Extensions()
	if fmt.Sprint(ext["knativeerrorcode"]) != "400" {
		t.Errorf("knativeerrorcode = %v", ext["knativeerrorcode"])
	}
	if d, _ := base64.StdEncoding.DecodeString(fmt.Sprint(ext["knativeerrordata"])); string(d) != `{"reason":"unknown_currency"}` {
		t.Errorf("knativeerrordata decodes to %q", d)
	}
	dl := <-e.dead
	if dl.Attempts != 1 || dl.StatusCode != 400 || !strings.Contains(dl.Reason, "not retryable") {
		t.Errorf("dead letter = %+v", dl)
	}
}

// TestRetryRule pins Knative's SelectiveRetry: which answers are retried.
func TestRetryRule(t *testing.T) {
	for code, want := range map[int]bool{
		0: true, 404: true, 408: true, 409: true, 429: true, 500: true, 502: true, 503: true, 504: true,
		300: false, 301: false, 400: false, 401: false, 403: false, 410: false, 413: false, 422: false,
	} {
		if got := knativeRetryable(code); got != want {
			t.Errorf("knativeRetryable(%d) = %v, want %v", code, got, want)
		}
	}
}

func TestBackoffPolicies(t *testing.T) {
	ptr := func(s string) *string { return &s }
	i32 := func(i int32) *int32 { return &i }
	tests := []struct {
		name, policy, delay string
		want                []time.Duration
	}{
		{"exponential", "exponential", "PT0.2S", []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond}},
		{"linear starts at zero, as go-retryablehttp counts", "linear", "PT1S", []time.Duration{0, time.Second, 2 * time.Second}},
		{"no policy, no wait", "", "PT1S", []time.Duration{0, 0, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := deliverySpec(i32(3), tc.policy, ptr(tc.delay))
			p, err := knativePolicy(d, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			var got []time.Duration
			for i := 0; i < 3; i++ {
				got = append(got, p.backoff(i))
			}
			if !reflect.DeepEqual(got, tc.want) || p.retryMax != 3 {
				t.Errorf("backoff = %v retryMax %d, want %v", got, p.retryMax, tc.want)
			}
		})
	}
	if _, err := knativePolicy(deliverySpec(i32(1), "exponential", ptr("soon")), time.Second); err == nil {
		t.Error("bad backoffDelay accepted")
	}
}

func deliverySpec(retry *int32, policy string, delay *string) *eventingduckv1.DeliverySpec {
	d := &eventingduckv1.DeliverySpec{Retry: retry, BackoffDelay: delay}
	if policy != "" {
		p := eventingduckv1.BackoffPolicyType(policy)
		d.BackoffPolicy = &p
	}
	return d
}

func TestConnectionErrorIsRetriedAndReportedAs500(t *testing.T) {
	e := newEnv(t, nil, Options{})
	e.fakes["topup"].srv.Close() // connection refused from now on
	if err := e.router.Publish(context.Background(), newEvent("dev.sebelas.topup.screened", "t1", map[string]any{})); err != nil {
		t.Fatal(err)
	}
	e.wait(t)
	if n := len(e.sleeps.all()); n != 10 {
		t.Errorf("retried %d times, want 10", n)
	}
	dl := <-e.dead
	if dl.StatusCode != 500 || dl.Attempts != 11 || !strings.Contains(dl.Reason, "no response") {
		t.Errorf("dead letter = %+v", dl)
	}
	d, _ := base64.StdEncoding.DecodeString(fmt.Sprint(dl.Event.Extensions()["knativeerrordata"]))
	if !strings.HasPrefix(string(d), "dispatch error: ") {
		t.Errorf("knativeerrordata = %q", d)
	}
}

func TestNonCloudEventBodyOn2xxIsAFailure(t *testing.T) {
	e := newEnv(t, nil, Options{})
	e.fakes["refund"].respond = func(n int, _ cloudevents.Event, w http.ResponseWriter) {
		if n == 1 {
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, "ok") // not a CloudEvent: Knative answers 502
			return
		}
		w.WriteHeader(http.StatusOK)
	}
	if err := e.router.Publish(context.Background(), newEvent("dev.sebelas.refund.requested", "r3", map[string]any{})); err != nil {
		t.Fatal(err)
	}
	e.wait(t)
	if n := len(e.fakes["refund"].events()); n != 2 {
		t.Errorf("refund got %d attempts, want 2 (502 retried)", n)
	}
}

func TestFirePingSendsKnativePingEventToItsTrigger(t *testing.T) {
	now := time.Date(2019, 11, 10, 17, 5, 0, 0, time.UTC)
	e := newEnv(t, nil, Options{Now: func() time.Time { return now }})
	if err := e.router.FirePing(context.Background(), "settle-id"); err != nil {
		t.Fatal(err)
	}
	e.wait(t)
	got := e.fakes["settle"].events()
	if len(got) != 1 {
		t.Fatalf("settle got %d events, want 1", len(got))
	}
	ev := got[0].event
	if ev.Type() != "dev.knative.sources.ping" || ev.Source() != "/apis/v1/namespaces/sebelas/pingsources/settle-id" {
		t.Errorf("ping type %q source %q", ev.Type(), ev.Source())
	}
	if ev.ID() == "" || !ev.Time().Equal(now) {
		t.Errorf("ping id %q time %v", ev.ID(), ev.Time())
	}
	if ev.DataContentType() != "application/json" || string(ev.Data()) != `{"market":"ID","timezone":"Asia/Jakarta"}` {
		t.Errorf("ping data %q %s", ev.DataContentType(), ev.Data())
	}
	if fmt.Sprint(ev.Extensions()["sebelastype"]) != "dev.sebelas.settlement.due" {
		t.Errorf("extensions = %v", ev.Extensions())
	}
	if n := len(e.fakes["topup"].events()); n != 0 {
		t.Errorf("topup got the settlement tick")
	}
	if err := e.router.FirePing(context.Background(), "topup-reconcile"); err != nil {
		t.Fatal(err)
	}
	e.wait(t)
	if tp := e.fakes["topup"].events(); len(tp) != 1 || fmt.Sprint(tp[0].event.Extensions()["sebelastype"]) != "dev.sebelas.topup.reconcile" {
		t.Errorf("topup got %v", tp)
	}
	if n := len(e.fakes["settle"].events()); n != 1 {
		t.Errorf("settle got the reconcile tick")
	}
	if st := e.router.Stats(); st.Pings["settle-id"] != 1 || st.Pings["topup-reconcile"] != 1 || st.Pings["settle-ph"] != 0 {
		t.Errorf("ping stats = %v", st.Pings)
	}
	if err := e.router.FirePing(context.Background(), "settle-xx"); err == nil || !strings.Contains(err.Error(), "settle-id") {
		t.Errorf("FirePing(unknown) = %v", err)
	}
}

func TestPingSchedulesFollowTheirTimeZone(t *testing.T) {
	e := newEnv(t, nil, Options{})
	after := time.Date(2019, 11, 10, 12, 0, 0, 0, time.UTC)
	want := map[string]string{ // 00:05 local on 11 November
		"settle-my": "2019-11-10T16:05:00Z", "settle-ph": "2019-11-10T16:05:00Z",
		"settle-id": "2019-11-10T17:05:00Z", "settle-th": "2019-11-10T17:05:00Z",
		"settle-bd": "2019-11-10T18:05:00Z", "settle-in": "2019-11-10T18:35:00Z",
		"settle-pk": "2019-11-10T19:05:00Z", "topup-reconcile": "2019-11-10T12:01:00Z",
	}
	for name, w := range want {
		next, err := e.router.NextPing(name, after)
		if err != nil {
			t.Fatal(err)
		}
		if got := next.UTC().Format(time.RFC3339); got != w {
			t.Errorf("%s next = %s, want %s", name, got, w)
		}
	}
	if got := e.router.PingSources(); len(got) != 8 {
		t.Errorf("PingSources() = %v", got)
	}
}

func TestWaitWaitsForWholeChains(t *testing.T) {
	e := newEnv(t, nil, Options{})
	release := make(chan struct{})
	e.fakes["fraud"].respond = func(_ int, in cloudevents.Event, w http.ResponseWriter) {
		<-release
		replyWith(t, w, newEvent("dev.sebelas.topup.screened", "s-"+in.ID(), map[string]any{}))
	}
	if err := e.router.Publish(context.Background(), newEvent("dev.sebelas.topup.requested", "t9", map[string]any{})); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := e.router.Wait(ctx); err != context.DeadlineExceeded {
		t.Fatalf("Wait while fraud blocks = %v, want deadline exceeded", err)
	}
	close(release)
	e.wait(t)
	// Wait returned only after the reply reached topup.
	if got := e.fakes["topup"].events(); len(got) != 1 || got[0].event.ID() != "s-t9" {
		t.Errorf("topup got %v", got)
	}
}

func TestIngress(t *testing.T) {
	e := newEnv(t, nil, Options{MaxBodyBytes: 4096})
	srv := httptest.NewServer(e.router)
	defer srv.Close()

	structured := `{"specversion":"1.0","id":"r7","type":"dev.sebelas.refund.requested","source":"/m","datacontenttype":"application/json","data":{"refund_id":"r7"}}`
	tests := []struct {
		name, method, path, ctype, body string
		header                          map[string]string
		want                            int
	}{
		{"structured", "POST", "/", "application/cloudevents+json", structured, nil, http.StatusAccepted},
		{"binary on the Knative path", "POST", "/sebelas/default", "application/json", `{"refund_id":"r8"}`,
			map[string]string{"Ce-Specversion": "1.0", "Ce-Id": "r8", "Ce-Type": "dev.sebelas.refund.requested", "Ce-Source": "/m"}, http.StatusAccepted},
		{"not an event", "POST", "/", "application/json", `{}`, nil, http.StatusBadRequest},
		{"missing id", "POST", "/", "application/cloudevents+json", `{"specversion":"1.0","type":"x","source":"/m"}`, nil, http.StatusBadRequest},
		{"too large", "POST", "/", "application/cloudevents+json", strings.Replace(structured, `"r7"}`, `"`+strings.Repeat("x", 5000)+`"}`, 1), nil, http.StatusRequestEntityTooLarge},
		{"wrong broker", "POST", "/sebelas/other", "application/cloudevents+json", structured, nil, http.StatusNotFound},
		{"GET", "GET", "/", "", "", nil, http.StatusMethodNotAllowed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, bytes.NewBufferString(tc.body))
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status = %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
	e.wait(t)
	got := e.fakes["refund"].events()
	if len(got) != 2 {
		t.Fatalf("refund got %d events, want 2", len(got))
	}
	for _, g := range got {
		if !g.binary {
			t.Errorf("event %s not delivered in binary mode", g.event.ID())
		}
	}
}

// loopSet is a minimal deployment whose only function answers every event
// with another event of the same type: a reply loop.
const loopSet = `
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default, namespace: t}
spec: {}
---
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: echo, namespace: t}
spec:
  template:
    spec:
      containers: [{image: echo}]
---
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: dls, namespace: t}
spec:
  template:
    spec:
      containers: [{image: dls}]
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: echo, namespace: t}
spec:
  broker: default
  filter: {attributes: {type: loop}}
  subscriber: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: echo}}
  delivery:
    retry: 2
    deadLetterSink: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: dls}}
---
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata: {name: direct, namespace: t}
spec:
  schedule: "0 0 * * *"
  data: hello
  contentType: text/plain
  sink: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: echo}}
`

func TestReplyLoopEndsAtBrokerTTL(t *testing.T) {
	set, err := manifests.LoadReader("loop.yaml", strings.NewReader(loopSet))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, set, Options{KeepDeadLetters: 1})
	e.fakes["echo"].respond = func(n int, _ cloudevents.Event, w http.ResponseWriter) {
		replyWith(t, w, newEvent("loop", fmt.Sprintf("l%d", n), map[string]any{}))
	}
	if err := e.router.Publish(context.Background(), newEvent("loop", "l0", map[string]any{})); err != nil {
		t.Fatal(err)
	}
	e.wait(t)
	if n := len(e.fakes["echo"].events()); n != defaultTTL {
		t.Errorf("echo saw %d events, want %d (the broker TTL)", n, defaultTTL)
	}
	dl := <-e.dead
	if dl.StatusCode != 400 || !strings.Contains(dl.Reason, "TTL") || dl.Event.ID() != fmt.Sprintf("l%d", defaultTTL-1) {
		t.Errorf("dead letter = %+v", dl)
	}
	if got := fmt.Sprint(dl.Event.Extensions()["knativeerrordest"]); !strings.Contains(got, "broker-ingress") {
		t.Errorf("knativeerrordest = %s", got)
	}
}

func TestPingStraightToServiceUsesAdapterPolicy(t *testing.T) {
	set, err := manifests.LoadReader("loop.yaml", strings.NewReader(loopSet))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, set, Options{})
	e.fakes["echo"].respond = status(http.StatusServiceUnavailable, "")
	if err := e.router.FirePing(context.Background(), "direct"); err != nil {
		t.Fatal(err)
	}
	e.wait(t)
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond}
	if got := e.sleeps.all(); !reflect.DeepEqual(got, want) {
		t.Errorf("backoff = %v, want %v", got, want)
	}
	if n := len(e.fakes["dls"].events()); n != 0 {
		t.Errorf("a PingSource has no dead-letter sink, yet dls got %d", n)
	}
	dl := <-e.dead
	if dl.PingSource != "direct" || dl.Attempts != 6 || dl.SinkErr == nil {
		t.Errorf("dead letter = %+v", dl)
	}
	if got := e.fakes["echo"].events(); len(got) == 0 || string(got[0].event.Data()) != "hello" || got[0].event.DataContentType() != "text/plain" {
		t.Errorf("echo got %v", got)
	}
}

func TestDeadLetterListIsBounded(t *testing.T) {
	e := newEnv(t, nil, Options{KeepDeadLetters: 2})
	e.fakes["charge"].respond = status(http.StatusBadRequest, "")
	for i := 0; i < 5; i++ {
		if err := e.router.Publish(context.Background(), newEvent("dev.sebelas.charge.screened", fmt.Sprintf("b%d", i), map[string]any{})); err != nil {
			t.Fatal(err)
		}
		e.wait(t)
	}
	got := e.router.DeadLetters()
	if len(got) != 2 || got[0].Event.ID() != "b3" || got[1].Event.ID() != "b4" {
		t.Errorf("DeadLetters() = %d, want the last 2", len(got))
	}
	if st := e.router.Stats(); st.DeadLettered != 5 {
		t.Errorf("DeadLettered = %d", st.DeadLettered)
	}
}

func TestPublishRejectsInvalidEvent(t *testing.T) {
	e := newEnv(t, nil, Options{})
	ev := cloudevents.NewEvent()
	ev.SetType("dev.sebelas.charge.requested") // no id, no source
	if err := e.router.Publish(context.Background(), ev); err == nil {
		t.Fatal("invalid event accepted")
	}
}

// TestStartPingsFiresOnSchedule runs the real cron wiring with a one-second
// schedule (Knative refuses @every in a manifest; robfig/cron accepts it,
// which keeps this test short).
func TestStartPingsFiresOnSchedule(t *testing.T) {
	set, err := manifests.LoadReader("loop.yaml", strings.NewReader(strings.Replace(loopSet, `"0 0 * * *"`, `"@every 1s"`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, set, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	e.router.StartPings(ctx)
	deadline := time.Now().Add(5 * time.Second)
	for len(e.fakes["echo"].events()) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	e.wait(t)
	got := e.fakes["echo"].events()
	if len(got) == 0 {
		t.Fatal("no ping within 5 s")
	}
	if got[0].event.Source() != "/apis/v1/namespaces/t/pingsources/direct" {
		t.Errorf("source = %q", got[0].event.Source())
	}
}
