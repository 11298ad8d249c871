package ingress_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/devtools/ddbtest"
	"github.com/sebelas/sebelas/internal/ingress"
	"github.com/sebelas/sebelas/internal/ledger"
	"github.com/sebelas/sebelas/internal/money"
	"github.com/sebelas/sebelas/internal/signing"
	"github.com/sebelas/sebelas/internal/table"
	"github.com/sebelas/sebelas/internal/telemetry"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

// Test secrets: 32 bytes each, made up for the tests.
var (
	keyOld   = bytes.Repeat([]byte{0x11}, 32)
	keyNew   = bytes.Repeat([]byte{0x22}, 32)
	keyThird = bytes.Repeat([]byte{0x33}, 32)
	keyOther = bytes.Repeat([]byte{0x44}, 32)
)

func b64(k []byte) string { return base64.StdEncoding.EncodeToString(k) }

var (
	keysText = "tokopedia 2026-10 " + b64(keyOld) + "\n" +
		"tokopedia 2026-11 " + b64(keyNew) + "\n" +
		"lazada k1 " + b64(keyOther) + "\n"
	merchantsText = "tokopedia m-toko-* m-flagship\nlazada m-laz-*\n"
)

// testSigner signs what the ingress publishes (required).
var testSigner = signing.NewDevKeys().Signers[signing.RoleIngress]

// now is the fixed clock of the tests.
var now = time.Date(2026, 11, 11, 0, 0, 5, 0, time.UTC)

// broker records what the ingress publishes; fail makes it refuse.
type broker struct {
	mu   sync.Mutex
	evs  []cloudevents.Event
	fail bool
}

func (b *broker) Publish(_ context.Context, ev cloudevents.Event) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fail {
		return errors.New("broker down")
	}
	b.evs = append(b.evs, ev)
	return nil
}

func (b *broker) events() []cloudevents.Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]cloudevents.Event(nil), b.evs...)
}

type fixture struct {
	h      *ingress.Handler
	broker *broker
	ledger *ledger.Store
	clock  *time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db, name := ddbtest.New(t)
	f := &fixture{broker: &broker{}, ledger: ledger.New(db, name, nil)}
	clock := now
	f.clock = &clock
	h, err := ingress.New(ingress.Options{
		Signer: testSigner, KeysText: keysText, MerchantsText: merchantsText,
		DB: db, Table: name, Charges: f.ledger, Broker: f.broker,
		Now: func() time.Time { return *f.clock },
	})
	if err != nil {
		t.Fatal(err)
	}
	f.h = h
	return f
}

func chargeBody(t testing.TB, chargeID, marketplace, merchant string) []byte {
	t.Helper()
	b, err := json.Marshal(events.ChargeRequested{
		ChargeID: chargeID, Marketplace: marketplace, MerchantID: merchant, PayerWallet: "w-ana",
		Amount: 125_000, Currency: "IDR", RequestedAt: now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// signed is one request as a marketplace would send it.
type signed struct {
	marketplace, eventType string
	at                     time.Time
	secret                 []byte
	body                   []byte
}

func (s signed) request() *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/v1/events", bytes.NewReader(s.body))
	ingress.SignRequest(req, s.secret, s.marketplace, s.eventType, s.at, s.body)
	return req
}

// again is a byte-for-byte copy of req with body: what a replay sends.
func again(req *http.Request, body []byte) *http.Request {
	cp := httptest.NewRequest(http.MethodPost, "/v1/events", bytes.NewReader(body))
	cp.Header = req.Header.Clone()
	return cp
}

func (f *fixture) do(req *http.Request) (int, map[string]string) {
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	var out map[string]string
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	return rec.Code, out
}

func charge(t testing.TB, id string) signed {
	return signed{"tokopedia", events.TypeChargeRequested, now, keyNew, chargeBody(t, id, "tokopedia", "m-flagship")}
}

type answer struct {
	Status int
	Error  string
}

func TestAcceptedChargeIsPublishedOnce(t *testing.T) {
	f := newFixture(t)
	s := charge(t, "ch-1")
	code, out := f.do(s.request())
	if code != http.StatusAccepted || out["id"] == "" {
		t.Fatalf("answer = %d %v, want 202 with an id", code, out)
	}
	evs := f.broker.events()
	if len(evs) != 1 {
		t.Fatalf("published %d events, want 1", len(evs))
	}
	ev := evs[0]
	got := struct{ Type, Source, Subject, ID string }{ev.Type(), ev.Source(), ev.Subject(), ev.ID()}
	want := struct{ Type, Source, Subject, ID string }{events.TypeChargeRequested, "/marketplaces/tokopedia", "ch-1", out["id"]}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("published event (-want +got):\n%s", diff)
	}
	var req events.ChargeRequested
	if err := events.Decode(ev, &req); err != nil {
		t.Fatalf("published payload does not decode: %v", err)
	}
	if req.ChargeID != "ch-1" || req.Amount != 125_000 || req.MerchantID != "m-flagship" {
		t.Errorf("published payload = %+v", req)
	}
	// The same payload signed again a second later is a new request (not
	// a replay) and the same CloudEvent id, so consumers see one event.
	s.at = now.Add(time.Second)
	code, out2 := f.do(s.request())
	if code != http.StatusAccepted || out2["id"] != out["id"] {
		t.Errorf("re-signed resend = %d %v, want 202 with id %s", code, out2, out["id"])
	}
}

// TestRejections covers every way in that must be refused: each answers
// 4xx with its reason and publishes nothing.
func TestRejections(t *testing.T) {
	f := newFixture(t)
	ok := charge(t, "ch-ok")
	with := func(mut func(*signed)) *http.Request {
		s := ok
		mut(&s)
		return s.request()
	}
	tampered := func() *http.Request {
		req := ok.request()
		body := bytes.Replace(ok.body, []byte(`"amount":125000`), []byte(`"amount":925000`), 1)
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
		return req
	}
	header := func(name, value string) *http.Request {
		req := ok.request()
		if value == "" {
			req.Header.Del(name)
		} else {
			req.Header.Set(name, value)
		}
		return req
	}
	twice := func(name string) *http.Request {
		req := ok.request()
		req.Header.Add(name, req.Header.Get(name))
		return req
	}
	big := bytes.Repeat([]byte(" "), ingress.BodyBytesMax+1)
	topup, _ := events.Sample(events.TypeTopupRequested)
	screened, _ := events.Sample(events.TypeChargeScreened)
	tests := []struct {
		name string
		req  *http.Request
		want answer
	}{
		{"body changed after signing", tampered(), answer{401, "unauthenticated"}},
		{"signed with another marketplace's key", with(func(s *signed) { s.secret = keyOther }), answer{401, "unauthenticated"}},
		{"third key, not one of the two active", with(func(s *signed) { s.secret = keyThird }), answer{401, "unauthenticated"}},
		{"signature over another type", func() *http.Request {
			req := ok.request()
			req.Header.Set(ingress.HeaderEventType, events.TypeRefundRequested)
			return req
		}(), answer{401, "unauthenticated"}},
		{"timestamp older than the window", with(func(s *signed) { s.at = now.Add(-300*time.Second - time.Second) }), answer{401, "stale_timestamp"}},
		{"timestamp in the future", with(func(s *signed) { s.at = now.Add(61 * time.Second) }), answer{401, "future_timestamp"}},
		{"unknown marketplace", with(func(s *signed) { s.marketplace = "shopee" }), answer{401, "unauthenticated"}},
		{"merchant not allowed", with(func(s *signed) { s.body = chargeBody(t, "ch-x", "tokopedia", "m-laz-1") }), answer{403, "merchant_not_allowed"}},
		{"payload names another marketplace", with(func(s *signed) { s.body = chargeBody(t, "ch-x", "lazada", "m-toko-1") }), answer{403, "marketplace_mismatch"}},
		{"top-up is not a marketplace event", with(func(s *signed) { s.eventType, s.body = events.TypeTopupRequested, topup }), answer{403, "event_type_not_allowed"}},
		{"screened events come only from fraud", with(func(s *signed) { s.eventType, s.body = events.TypeChargeScreened, screened }), answer{403, "event_type_not_allowed"}},
		{"oversized body", with(func(s *signed) { s.body = big }), answer{413, "body_too_large"}},
		{"oversized body without a length", func() *http.Request {
			req := with(func(s *signed) { s.body = big })
			req.ContentLength = -1 // chunked: only the reader's limit can stop it
			return req
		}(), answer{413, "body_too_large"}},
		{"invalid payload", with(func(s *signed) { s.body = []byte(`{"charge_id":"ch-x","amount":-5}`) }), answer{400, ""}},
		{"no signature", header(ingress.HeaderSignature, ""), answer{400, "bad_signature_header"}},
		{"two signatures", twice(ingress.HeaderSignature), answer{400, "bad_signature_header"}},
		{"signature not hex", header(ingress.HeaderSignature, "v1="+strings.Repeat("zz", 32)), answer{400, "bad_signature_header"}},
		{"signature scheme unknown", header(ingress.HeaderSignature, "v2="+strings.Repeat("00", 32)), answer{400, "bad_signature_header"}},
		{"signature too short", header(ingress.HeaderSignature, "v1=00"), answer{400, "bad_signature_header"}},
		{"no timestamp", header(ingress.HeaderTimestamp, ""), answer{400, "bad_timestamp_header"}},
		{"no nonce", header(ingress.HeaderNonce, ""), answer{400, "bad_nonce_header"}},
		{"nonce too short", header(ingress.HeaderNonce, "abc"), answer{400, "bad_nonce_header"}},
		{"nonce with a space", header(ingress.HeaderNonce, "abcdefgh ijklmnop"), answer{400, "bad_nonce_header"}},
		{"nonce changed after signing", header(ingress.HeaderNonce, "AAAAAAAAAAAAAAAAAAAAAA"), answer{401, "unauthenticated"}},
		{"timestamp not digits", header(ingress.HeaderTimestamp, "-1762819205"), answer{400, "bad_timestamp_header"}},
		{"timestamp 13 digits", header(ingress.HeaderTimestamp, "1762819205000"), answer{400, "bad_timestamp_header"}},
		{"marketplace with a newline", header(ingress.HeaderMarketplace, "tokopedia\nx"), answer{400, "bad_marketplace_header"}},
		{"two marketplaces", twice(ingress.HeaderMarketplace), answer{400, "bad_marketplace_header"}},
		{"no event type", header(ingress.HeaderEventType, ""), answer{400, "bad_event_type_header"}},
		{"event type upper case", header(ingress.HeaderEventType, "DEV.SEBELAS.CHARGE.REQUESTED"), answer{400, "bad_event_type_header"}},
		{"GET", httptest.NewRequest(http.MethodGet, "/v1/events", nil), answer{405, "method_not_allowed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out := f.do(tt.req)
			got := answer{code, out["error"]}
			if tt.want.Error == "" { // only the prefix is stable
				got.Error = ""
				if !strings.HasPrefix(out["error"], "invalid_event: ") {
					t.Errorf("error = %q, want invalid_event: <why>", out["error"])
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
		})
	}
	if n := len(f.broker.events()); n != 0 {
		t.Errorf("%d events published by refused requests, want 0", n)
	}
}

func TestWindowEdgesAreAccepted(t *testing.T) {
	f := newFixture(t)
	for i, at := range []time.Time{now.Add(-300 * time.Second), now.Add(60 * time.Second)} {
		s := charge(t, "ch-edge-"+strconv.Itoa(i))
		s.at = at
		if code, out := f.do(s.request()); code != http.StatusAccepted {
			t.Errorf("signed at now%+v: %d %v, want 202", at.Sub(now), code, out)
		}
	}
}

func TestRotationBothActiveKeysWork(t *testing.T) {
	f := newFixture(t)
	for i, key := range [][]byte{keyOld, keyNew} {
		s := charge(t, "ch-rot-"+strconv.Itoa(i))
		s.secret = key
		if code, out := f.do(s.request()); code != http.StatusAccepted {
			t.Errorf("key %d: %d %v, want 202", i, code, out)
		}
	}
	if n := len(f.broker.events()); n != 2 {
		t.Errorf("published %d, want 2", n)
	}
}

func TestExactReplayIsRefused(t *testing.T) {
	f := newFixture(t)
	s := charge(t, "ch-replay")
	first := s.request()
	if code, out := f.do(again(first, s.body)); code != http.StatusAccepted {
		t.Fatalf("first: %d %v", code, out)
	}
	// Replayed a minute later, still inside the timestamp window: the
	// captured request as it was, and its nonce re-signed with the other
	// active key (only a key holder could): both refused, the nonce is
	// spent.
	*f.clock = now.Add(time.Minute)
	resigned := again(first, s.body)
	ts, _ := strconv.ParseInt(first.Header.Get(ingress.HeaderTimestamp), 10, 64)
	resigned.Header.Set(ingress.HeaderSignature, ingress.Sign(keyOld, "tokopedia", events.TypeChargeRequested, ts, first.Header.Get(ingress.HeaderNonce), s.body))
	for _, req := range []*http.Request{again(first, s.body), resigned} {
		code, out := f.do(req)
		if diff := cmp.Diff(answer{401, "replayed"}, answer{code, out["error"]}); diff != "" {
			t.Errorf("replay (-want +got):\n%s", diff)
		}
	}
	if n := len(f.broker.events()); n != 1 {
		t.Errorf("published %d, want 1", n)
	}
	if got := f.h.Counts()["replayed"]; got != 2 {
		t.Errorf("replayed count = %d, want 2", got)
	}
}

func TestBrokerDownIsRetryableAndResendWorks(t *testing.T) {
	f := newFixture(t)
	f.broker.fail = true
	s := charge(t, "ch-down")
	req := s.request()
	if code, out := f.do(again(req, s.body)); code != http.StatusServiceUnavailable {
		t.Fatalf("broker down: %d %v, want 503", code, out)
	}
	f.broker.fail = false
	// The very same signed request: the record was forgotten, so it is
	// not a replay.
	if code, out := f.do(again(req, s.body)); code != http.StatusAccepted {
		t.Fatalf("resend: %d %v, want 202", code, out)
	}
}

func TestStorageDownIsRetryable(t *testing.T) {
	db, err := table.NewClient(context.Background(), table.Config{Endpoint: "http://127.0.0.1:1", Table: "sebelas", MaxAttempts: 1, TimeoutMs: 500})
	if err != nil {
		t.Fatal(err)
	}
	b := &broker{}
	h, err := ingress.New(ingress.Options{Signer: testSigner, KeysText: keysText, MerchantsText: merchantsText, DB: db, Table: "sebelas",
		Charges: ledger.New(db, "sebelas", nil), Broker: b, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, charge(t, "ch-nodb").request())
	if rec.Code != http.StatusServiceUnavailable || len(b.events()) != 0 {
		t.Errorf("storage down: %d, %d published; want 503 and none", rec.Code, len(b.events()))
	}
}

func TestRefundNeedsAChargeOfAnAllowedMerchant(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.ledger.CashIn(ctx, "ci-1", "w-ana", money.Amount{Minor: 1_000_000, Currency: money.IDR}, "test"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ id, merchant string }{{"ch-toko", "m-toko-7"}, {"ch-laz", "m-laz-7"}} {
		req := events.ChargeRequested{ChargeID: c.id, Marketplace: "x", MerchantID: c.merchant, PayerWallet: "w-ana",
			Amount: 10_000, Currency: "IDR", RequestedAt: now}
		if out, err := f.ledger.Charge(ctx, req, money.DefaultLimits()); err != nil || out.Status != ledger.ChargeSucceeded {
			t.Fatalf("charge %s: %+v %v", c.id, out, err)
		}
	}
	refund := func(refundID, chargeID string) signed {
		b, _ := json.Marshal(events.RefundRequested{RefundID: refundID, ChargeID: chargeID, Marketplace: "tokopedia",
			Amount: 5_000, Reason: "damaged", RequestedAt: now})
		return signed{"tokopedia", events.TypeRefundRequested, now, keyNew, b}
	}
	tests := []struct {
		name string
		s    signed
		want answer
	}{
		{"own merchant's charge", refund("rf-1", "ch-toko"), answer{202, ""}},
		{"another marketplace's merchant", refund("rf-2", "ch-laz"), answer{403, "merchant_not_allowed"}},
		{"unknown charge", refund("rf-3", "ch-none"), answer{409, "unknown_charge"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out := f.do(tt.s.request())
			if diff := cmp.Diff(tt.want, answer{code, out["error"]}); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
		})
	}
	evs := f.broker.events()
	if len(evs) != 1 || evs[0].Type() != events.TypeRefundRequested || evs[0].Subject() != "rf-1" {
		t.Errorf("published %v, want only refund rf-1", evs)
	}
}

func TestMetricsCountOutcomes(t *testing.T) {
	f := newFixture(t)
	before := scrape(t, f.h)
	f.do(charge(t, "ch-m").request())
	bad := charge(t, "ch-m2")
	bad.secret = keyThird
	f.do(bad.request())
	f.do(bad.request())
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	after, _ := telemetry.Parse(strings.NewReader(body))
	// The counters are the process's: other tests count too, so the test
	// reads the change.
	got := map[string]float64{}
	for _, s := range []string{`sebelas_ingress_requests_total{outcome="accepted"}`, `sebelas_ingress_requests_total{outcome="unauthenticated"}`} {
		got[s] = after[s] - before[s]
	}
	want := map[string]float64{`sebelas_ingress_requests_total{outcome="accepted"}`: 1, `sebelas_ingress_requests_total{outcome="unauthenticated"}`: 2}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("/metrics counts (-want +got):\n%s", diff)
	}
	if !strings.Contains(body, "# TYPE sebelas_ingress_requests_total counter") {
		t.Errorf("/metrics has no TYPE line:\n%s", body)
	}
	if strings.Contains(body, "tokopedia") {
		t.Errorf("/metrics names a marketplace:\n%s", body)
	}
}

func scrape(t *testing.T, h http.Handler) map[string]float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	m, bad := telemetry.Parse(rec.Body)
	if bad != 0 {
		t.Fatalf("/metrics has %d lines Parse cannot read", bad)
	}
	return m
}

func TestUnauthorizedAnswerNamesTheScheme(t *testing.T) {
	f := newFixture(t)
	s := charge(t, "ch-www")
	s.secret = keyThird
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, s.request())
	if rec.Code != http.StatusUnauthorized || !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Sebelas-HMAC-SHA256") {
		t.Errorf("answer %d, WWW-Authenticate %q", rec.Code, rec.Header().Get("WWW-Authenticate"))
	}
}

// TestKeysFileRotationWithoutRestart rotates a marketplace's keys the way a
// Secret update does: the mounted file changes; after the reload interval
// the new key works and the retired one is refused.
func TestKeysFileRotationWithoutRestart(t *testing.T) {
	db, name := ddbtest.New(t)
	dir := t.TempDir()
	keys, merchants := filepath.Join(dir, "keys"), filepath.Join(dir, "merchants")
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(keys, "tokopedia old "+b64(keyOld)+"\n")
	write(merchants, "tokopedia m-flagship\n")
	clock := now
	b := &broker{}
	h, err := ingress.New(ingress.Options{Signer: testSigner, KeysFile: keys, MerchantsFile: merchants, DB: db, Table: name,
		Charges: ledger.New(db, name, nil), Broker: b, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	send := func(id string, key []byte) int {
		s := charge(t, id)
		s.at, s.secret = clock, key
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, s.request())
		return rec.Code
	}
	if got := send("ch-a", keyOld); got != http.StatusAccepted {
		t.Fatalf("old key before rotation: %d", got)
	}
	write(keys, "tokopedia new "+b64(keyNew)+"\n")
	// Force a different mtime even on coarse file systems.
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(keys, later, later); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(11 * time.Second)
	if got := send("ch-b", keyNew); got != http.StatusAccepted {
		t.Errorf("new key after reload: %d, want 202", got)
	}
	if got := send("ch-c", keyOld); got != http.StatusUnauthorized {
		t.Errorf("retired key after reload: %d, want 401", got)
	}
	// A broken entry is dropped, not papered over with the last good
	// configuration: the marketplace's only key is gone, so it is locked
	// out (fail closed) until the Secret is fixed.
	write(keys, "tokopedia new not-base64!\n")
	if err := os.Chtimes(keys, later.Add(time.Hour), later.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(11 * time.Second)
	if got := send("ch-d", keyNew); got != http.StatusUnauthorized {
		t.Errorf("after a broken update: %d, want 401 (the broken entry is dropped)", got)
	}
}

func TestParseConfig(t *testing.T) {
	k := func(b byte) string { return b64(bytes.Repeat([]byte{b}, 32)) }
	tests := []struct {
		name, keys, merchants string
		wantErr               string // "" = valid
	}{
		{"two keys", "a k1 " + k(1) + "\na k2 " + k(2), "a m-*", ""},
		{"entries separated by ;", "a k1 " + k(1) + ";b k1 " + k(2), "a m-*;b n-1", ""},
		{"comments and blanks", "# a comment\n\na k1 " + k(1) + "\n", "a m-1", ""},
		{"url alphabet, no padding", "a k1 " + base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32)), "a m-1", ""},
		{"64-byte secret", "a k1 " + b64(bytes.Repeat([]byte{7}, 64)), "a m-1", ""},
		{"third key", "a k1 " + k(1) + "\na k2 " + k(2) + "\na k3 " + k(3), "a m-*", "more than 2 active keys"},
		{"same key id twice", "a k1 " + k(1) + "\na k1 " + k(2), "a m-*", "given twice"},
		{"short secret", "a k1 " + b64(make([]byte, 31)), "a m-*", "31 bytes"},
		{"long secret", "a k1 " + b64(make([]byte, 65)), "a m-*", "65 bytes"},
		{"secret not base64", "a k1 %%%", "a m-*", "not base64"},
		{"two fields", "a " + k(1), "a m-*", "got 2 fields"},
		{"bad marketplace id", "-a k1 " + k(1), "-a m-*", "must match"},
		{"any merchant", "a k1 " + k(1), "a *", "non-empty prefix"},
		{"merchants without keys", "a k1 " + k(1), "a m-1\nb m-2", "has no keys"},
		{"keys without merchants", "a k1 " + k(1) + "\nb k1 " + k(2), "a m-1", "no merchants entry"},
		{"marketplace listed twice", "a k1 " + k(1), "a m-1\na m-2", "listed twice"},
		{"no patterns", "a k1 " + k(1), "a", "want <marketplace>"},
		{"one secret for two marketplaces", "a k1 " + k(1) + "\nb k1 " + k(1), "a m-1\nb n-1", "also another marketplace's"},
		{"one merchant for two marketplaces", "a k1 " + k(1) + "\nb k1 " + k(2), "a m-1\nb m-1", "overlap"},
		{"a merchant under another's prefix", "a k1 " + k(1) + "\nb k1 " + k(2), "a m-*\nb m-1", "overlap"},
		{"nested prefixes", "a k1 " + k(1) + "\nb k1 " + k(2), "a m-*\nb m-big-*", "overlap"},
		{"a prefix and the equal id", "a k1 " + k(1) + "\nb k1 " + k(2), "a m-1*\nb m-1", "overlap"},
		{"overlap inside one marketplace", "a k1 " + k(1), "a m-* m-1 m-big-*", ""},
		{"neighbours, no overlap", "a k1 " + k(1) + "\nb k1 " + k(2), "a m-1 m-1x* \nb m-10 m-2*", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ingress.ParseConfig([]byte(tt.keys), []byte(tt.merchants))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("ParseConfig: %v, want ok", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("ParseConfig err = %v, want one containing %q", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), k(1)) {
				t.Errorf("error quotes a secret: %v", err)
			}
		})
	}
}

func TestConfigLimits(t *testing.T) {
	var keys, merchants strings.Builder
	for i := range 1001 {
		keys.WriteString("mp" + strconv.Itoa(i) + " k " + secretN(i) + "\n")
		merchants.WriteString("mp" + strconv.Itoa(i) + " m" + strconv.Itoa(i) + "\n")
	}
	if _, err := ingress.ParseConfig([]byte(keys.String()), []byte(merchants.String())); err == nil || !strings.Contains(err.Error(), "more than 1000 marketplaces") {
		t.Errorf("1001 marketplaces: err = %v", err)
	}
	if _, err := ingress.ParseConfig(make([]byte, 1<<20+1), nil); err == nil {
		t.Error("keys text over 1 MiB accepted")
	}
	patterns := "a" + strings.Repeat(" m", 1001)
	if _, err := ingress.ParseConfig([]byte("a k "+b64(keyOld)), []byte(patterns)); err == nil || !strings.Contains(err.Error(), "at most 1000") {
		t.Errorf("1001 patterns: err = %v", err)
	}
}

func TestMayActFor(t *testing.T) {
	c, err := ingress.ParseConfig([]byte("a k "+b64(keyOld)), []byte("a m-toko-* m-flagship"))
	if err != nil {
		t.Fatal(err)
	}
	m := c.Marketplaces["a"]
	for merchant, want := range map[string]bool{
		"m-toko-1": true, "m-toko-": true, "m-flagship": true,
		"m-flagship2": false, "m-tok": false, "": false, "x-m-toko-1": false,
	} {
		if got := m.MayActFor(merchant); got != want {
			t.Errorf("MayActFor(%q) = %v, want %v", merchant, got, want)
		}
	}
}

func TestBuildNeedsTheBroker(t *testing.T) {
	env := map[string]string{"AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:1"}
	getenv := func(k string) string { return env[k] }
	if _, err := ingress.Build(context.Background(), getenv, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "K_SINK") {
		t.Errorf("Build without a sink: err = %v, want one naming K_SINK", err)
	}
}

func TestPublishedEventsAreSignedWhenAKeyIsGiven(t *testing.T) {
	db, name := ddbtest.New(t)
	dev := signing.NewDevKeys()
	keys := dev.Signers[signing.RoleIngress]
	b := &broker{}
	h, err := ingress.New(ingress.Options{KeysText: keysText, MerchantsText: merchantsText, DB: db, Table: name,
		Charges: ledger.New(db, name, nil), Broker: b, Signer: keys, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, charge(t, "ch-signed").request())
	evs := b.events()
	if rec.Code != http.StatusAccepted || len(evs) != 1 {
		t.Fatalf("answer %d, %d published", rec.Code, len(evs))
	}
	if err := dev.Verifier().Verify(evs[0], now); err != nil {
		t.Errorf("published event does not verify: %v", err)
	}
}

// TestSecretExampleHoldsNoUsableKey keeps the example Secret an example:
// its placeholders must not parse as keys.
func TestSecretExampleHoldsNoUsableKey(t *testing.T) {
	raw, err := os.ReadFile("../../infra/secrets/sebelas-ingress.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var secret struct {
		Kind       string            `json:"kind"`
		StringData map[string]string `json:"stringData"`
	}
	if err := yaml.Unmarshal(raw, &secret); err != nil {
		t.Fatal(err)
	}
	if secret.Kind != "Secret" || secret.StringData["keys"] == "" || secret.StringData["merchants"] == "" {
		t.Fatalf("example is not a Secret with keys and merchants: %+v", secret)
	}
	if _, err := ingress.ParseConfig([]byte(secret.StringData["keys"]), []byte(secret.StringData["merchants"])); err == nil {
		t.Error("the example Secret parses as a usable configuration; its keys must be placeholders")
	}
}

// putTwice applies every PutItem and then sends it again, as the SDK does
// when the answer to an applied write is lost (a 500, a timeout).
type putTwice struct{ *dynamodb.Client }

func (p putTwice) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if _, err := p.Client.PutItem(ctx, in, opts...); err != nil {
		return nil, err
	}
	return p.Client.PutItem(ctx, in, opts...)
}

// TestOwnWriteRetriedIsNotAReplay: the replay record's conditional put
// failing on the request's own earlier attempt must not refuse it.
func TestOwnWriteRetriedIsNotAReplay(t *testing.T) {
	db, name := ddbtest.New(t)
	b := &broker{}
	h, err := ingress.New(ingress.Options{Signer: testSigner, KeysText: keysText, MerchantsText: merchantsText, DB: putTwice{db}, Table: name,
		Charges: ledger.New(db, name, nil), Broker: b, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	s := charge(t, "ch-twice")
	req := s.request()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, again(req, s.body))
	if rec.Code != http.StatusAccepted {
		t.Fatalf("answer %d %s, want 202", rec.Code, rec.Body.String())
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, again(req, s.body))
	if rec.Code != http.StatusUnauthorized || len(b.events()) != 1 {
		t.Errorf("replay after it: %d, %d published; want 401 and 1", rec.Code, len(b.events()))
	}
}

// TestLimitEdges: each named limit of a request, at the edge and one past.
func TestLimitEdges(t *testing.T) {
	f := newFixture(t)
	ok := charge(t, "ch-edge")
	withNonce := func(nonce string) *http.Request {
		req := ok.request()
		ts, _ := strconv.ParseInt(req.Header.Get(ingress.HeaderTimestamp), 10, 64)
		req.Header.Set(ingress.HeaderNonce, nonce)
		req.Header.Set(ingress.HeaderSignature, ingress.Sign(keyNew, "tokopedia", events.TypeChargeRequested, ts, nonce, ok.body))
		return req
	}
	exact := ok
	exact.body = append(bytes.Repeat([]byte(" "), ingress.BodyBytesMax-len(ok.body)), ok.body...)
	twelve := ok.request()
	twelve.Header.Set(ingress.HeaderTimestamp, "100000000000")
	tests := []struct {
		name string
		req  *http.Request
		want answer
	}{
		// Leading white space is valid JSON: exactly at the limit the
		// body is read and the charge accepted.
		{"body of BodyBytesMax bytes", exact.request(), answer{202, ""}},
		{"nonce of 16 characters", withNonce(strings.Repeat("n", 16)), answer{202, ""}},
		{"nonce of 15 characters", withNonce(strings.Repeat("m", 15)), answer{400, "bad_nonce_header"}},
		{"nonce of 64 characters", withNonce(strings.Repeat("o", 64)), answer{202, ""}},
		{"nonce of 65 characters", withNonce(strings.Repeat("p", 65)), answer{400, "bad_nonce_header"}},
		// 12 digits parse (and are refused as the future); 13 do not.
		{"timestamp of 12 digits", twelve, answer{401, "future_timestamp"}},
		// A type of 64 characters is read (and not allowed); 65 is not.
		{"event type of 64 characters", func() *http.Request {
			s := ok
			s.eventType = strings.Repeat("t", 64)
			return s.request()
		}(), answer{403, "event_type_not_allowed"}},
		{"event type of 65 characters", func() *http.Request {
			s := ok
			s.eventType = strings.Repeat("t", 65)
			return s.request()
		}(), answer{400, "bad_event_type_header"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out := f.do(tt.req)
			if diff := cmp.Diff(tt.want, answer{code, out["error"]}); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConfigLimitEdges(t *testing.T) {
	var keys, merchants strings.Builder
	for i := range 1000 {
		keys.WriteString("mp" + strconv.Itoa(i) + " k " + secretN(i) + "\n")
		merchants.WriteString("mp" + strconv.Itoa(i) + " m" + strconv.Itoa(i) + "\n")
	}
	if _, err := ingress.ParseConfig([]byte(keys.String()), []byte(merchants.String())); err != nil {
		t.Errorf("1000 marketplaces: %v, want accepted", err)
	}
	patterns := "a" + strings.Repeat(" m", 1000)
	if _, err := ingress.ParseConfig([]byte("a k "+b64(keyOld)), []byte(patterns)); err != nil {
		t.Errorf("1000 patterns: %v, want accepted", err)
	}
	// Exactly 1 MiB of keys text (a valid entry padded with comment lines).
	entry := "a k " + b64(keyOld) + "\n"
	pad := 1<<20 - len(entry)
	text := entry + "#" + strings.Repeat("x", pad-2) + "\n"
	if len(text) != 1<<20 {
		t.Fatalf("built %d bytes", len(text))
	}
	if _, err := ingress.ParseConfig([]byte(text), []byte("a m")); err != nil {
		t.Errorf("keys text of exactly 1 MiB: %v, want accepted", err)
	}
}

// secretN is a distinct valid secret per i.
func secretN(i int) string {
	b := bytes.Repeat([]byte{0x5a}, 32)
	binary.BigEndian.PutUint32(b, uint32(i))
	return b64(b)
}

func TestNewRequiresASigner(t *testing.T) {
	db, name := ddbtest.New(t)
	defer func() {
		if recover() == nil {
			t.Error("ingress.New without a Signer did not panic: events would go out unsigned")
		}
	}()
	_, _ = ingress.New(ingress.Options{KeysText: keysText, MerchantsText: merchantsText, DB: db, Table: name,
		Charges: ledger.New(db, name, nil), Broker: &broker{}})
}

// TestUnknownMarketplaceAnswersLikeBadSignature: an unknown marketplace id
// and a bad signature for a known one get the same status, headers and
// body, and the same /metrics counter, so nobody can list marketplace ids.
func TestUnknownMarketplaceAnswersLikeBadSignature(t *testing.T) {
	f := newFixture(t)
	answer := func(s signed) (int, http.Header, string) {
		rec := httptest.NewRecorder()
		f.h.ServeHTTP(rec, s.request())
		return rec.Code, rec.Header(), rec.Body.String()
	}
	bad := charge(t, "ch-enum")
	bad.secret = keyThird
	unknown := charge(t, "ch-enum")
	unknown.marketplace = "shopee"
	bc, bh, bb := answer(bad)
	uc, uh, ub := answer(unknown)
	if diff := cmp.Diff([]any{bc, bh, bb}, []any{uc, uh, ub}); diff != "" || bc != http.StatusUnauthorized {
		t.Errorf("bad signature %d, unknown marketplace (-bad +unknown):\n%s", bc, diff)
	}
	// A stale timestamp is refused before the marketplace is looked up.
	bad.at, unknown.at = now.Add(-time.Hour), now.Add(-time.Hour)
	_, _, bb = answer(bad)
	_, _, ub = answer(unknown)
	if bb != ub {
		t.Errorf("stale: known %s, unknown %s", bb, ub)
	}
	if diff := cmp.Diff(map[string]int64{"unauthenticated": 2, "stale_timestamp": 2}, f.h.Counts()); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
}

// liveFiles is an ingress reading its keys and merchants from files, with
// a clock the test moves past the reload interval.
type liveFiles struct {
	t               *testing.T
	h               *ingress.Handler
	keys, merchants string
	clock           time.Time
	mtime           time.Time
}

func newLiveFiles(t *testing.T, keys, merchants string) *liveFiles {
	db, name := ddbtest.New(t)
	dir := t.TempDir()
	l := &liveFiles{t: t, keys: filepath.Join(dir, "keys"), merchants: filepath.Join(dir, "merchants"), clock: now, mtime: time.Now()}
	l.write(keys, merchants)
	h, err := ingress.New(ingress.Options{Signer: testSigner, KeysFile: l.keys, MerchantsFile: l.merchants, DB: db, Table: name,
		Charges: ledger.New(db, name, nil), Broker: &broker{}, Now: func() time.Time { return l.clock }})
	if err != nil {
		t.Fatal(err)
	}
	l.h = h
	return l
}

// write replaces both files (a Secret update) and moves the clock past
// the reload interval.
func (l *liveFiles) write(keys, merchants string) {
	l.mtime = l.mtime.Add(time.Hour) // a new mtime even on coarse file systems
	for p, text := range map[string]string{l.keys: keys, l.merchants: merchants} {
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			l.t.Fatal(err)
		}
		if err := os.Chtimes(p, l.mtime, l.mtime); err != nil {
			l.t.Fatal(err)
		}
	}
	l.clock = l.clock.Add(11 * time.Second)
}

func (l *liveFiles) send(id, marketplace, merchant string, key []byte) int {
	s := charge(l.t, id)
	s.at, s.secret, s.marketplace = l.clock, key, marketplace
	s.body = chargeBody(l.t, id, marketplace, merchant)
	rec := httptest.NewRecorder()
	l.h.ServeHTTP(rec, s.request())
	return rec.Code
}

// reloadFailures is the process's reload failure counter (every test's).
func (l *liveFiles) reloadFailures() float64 {
	return scrape(l.t, l.h)["sebelas_ingress_config_reload_failures_total"]
}

// TestRevocationUnderABrokenUpdate: a stolen key is removed from the
// Secret in the same update that breaks another entry. The stolen key stops
// working at the next reload; the good entries still apply; the broken one
// is dropped and reported.
func TestRevocationUnderABrokenUpdate(t *testing.T) {
	l := newLiveFiles(t,
		"tokopedia stolen "+b64(keyOld)+"\ntokopedia next "+b64(keyNew)+"\nlazada k1 "+b64(keyOther)+"\n",
		"tokopedia m-toko-*\nlazada m-laz-*\n")
	if got := l.send("ch-1", "tokopedia", "m-toko-1", keyOld); got != http.StatusAccepted {
		t.Fatalf("stolen key before revocation: %d", got)
	}
	failures := l.reloadFailures()
	l.write("tokopedia next "+b64(keyNew)+"\nlazada k1 %%%not-base64\nbukalapak k1 "+b64(keyThird)+"\n",
		"tokopedia m-toko-*\nlazada m-laz-*\nbukalapak m-buka-* *\n")
	got := map[string]int{
		"stolen key":                         l.send("ch-2", "tokopedia", "m-toko-1", keyOld),
		"kept key":                           l.send("ch-3", "tokopedia", "m-toko-1", keyNew),
		"broken entry's marketplace":         l.send("ch-4", "lazada", "m-laz-1", keyOther),
		"new marketplace, good pattern":      l.send("ch-5", "bukalapak", "m-buka-1", keyThird),
		"new marketplace, dropped pattern *": l.send("ch-6", "bukalapak", "m-toko-1", keyThird),
	}
	want := map[string]int{
		"stolen key": 401, "kept key": 202, "broken entry's marketplace": 401,
		"new marketplace, good pattern": 202, "new marketplace, dropped pattern *": 403,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("answers after the update (-want +got):\n%s", diff)
	}
	if got := l.reloadFailures() - failures; got != 1 {
		t.Errorf("reload failures counted %v, want 1", got)
	}
}

// TestDeletedFilesRevokeEverything: the Secret's files gone means no key
// is valid any more, not "keep the last ones"; back, they work again.
func TestDeletedFilesRevokeEverything(t *testing.T) {
	l := newLiveFiles(t, "tokopedia k1 "+b64(keyOld)+"\n", "tokopedia m-toko-*\n")
	if got := l.send("ch-1", "tokopedia", "m-toko-1", keyOld); got != http.StatusAccepted {
		t.Fatalf("before: %d", got)
	}
	failures := l.reloadFailures()
	for _, p := range []string{l.keys, l.merchants} {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	l.clock = l.clock.Add(11 * time.Second)
	if got := l.send("ch-2", "tokopedia", "m-toko-1", keyOld); got != http.StatusUnauthorized {
		t.Errorf("after the files were deleted: %d, want 401", got)
	}
	if got := l.reloadFailures() - failures; got != 1 {
		t.Errorf("reload failures counted %v, want 1", got)
	}
	l.write("tokopedia k1 "+b64(keyOld)+"\n", "tokopedia m-toko-*\n")
	if got := l.send("ch-3", "tokopedia", "m-toko-1", keyOld); got != http.StatusAccepted {
		t.Errorf("after the files came back: %d, want 202", got)
	}
}

// TestRateLimitPerMarketplace: a marketplace over its own rate is answered
// 429 with Retry-After and counted; another marketplace is not affected; a
// refused request does not spend the budget; the budget refills with time.
func TestRateLimitPerMarketplace(t *testing.T) {
	db, name := ddbtest.New(t)
	rates, err := ingress.ParseRateLimits("default=100:100; tokopedia=0.5:2")
	if err != nil {
		t.Fatal(err)
	}
	clock := now
	h, err := ingress.New(ingress.Options{Signer: testSigner, KeysText: keysText, MerchantsText: merchantsText, DB: db, Table: name,
		Charges: ledger.New(db, name, nil), Broker: &broker{}, RateLimits: rates, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	send := func(id, marketplace, merchant string) (int, string) {
		s := charge(t, id)
		s.at, s.marketplace, s.body = clock, marketplace, chargeBody(t, id, marketplace, merchant)
		if marketplace == "lazada" {
			s.secret = keyOther
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, s.request())
		return rec.Code, rec.Header().Get("Retry-After")
	}
	type got struct {
		Code       int
		RetryAfter string
	}
	var answers []got
	for i, mp := range []string{"tokopedia", "tokopedia", "tokopedia", "lazada", "tokopedia"} {
		merchant := map[string]string{"tokopedia": "m-toko-1", "lazada": "m-laz-1"}[mp]
		c, ra := send("ch-rate-"+strconv.Itoa(i), mp, merchant)
		answers = append(answers, got{c, ra})
	}
	want := []got{{202, ""}, {202, ""}, {429, "2"}, {202, ""}, {429, "2"}}
	if diff := cmp.Diff(want, answers); diff != "" {
		t.Errorf("answers (-want +got):\n%s", diff)
	}
	clock = clock.Add(2 * time.Second)
	if c, _ := send("ch-rate-later", "tokopedia", "m-toko-1"); c != http.StatusAccepted {
		t.Errorf("after Retry-After: %d, want 202", c)
	}
	if n := h.Counts()[ingress.OutcomeRateLimited]; n != 2 {
		t.Errorf("rate_limited counted %d, want 2", n)
	}
}

func TestParseRateLimits(t *testing.T) {
	for text, ok := range map[string]bool{
		"": true, "default=10:20": true, "tokopedia=0.5:1;lazada=100000:100000": true,
		"tokopedia=0:1": false, "tokopedia=1:0": false, "tokopedia=100001:1": false, "tokopedia=1:100001": false,
		"tokopedia=1": false, "-bad=1:1": false, "tokopedia=1:1;tokopedia=2:2": false, "tokopedia=NaN:1": false,
	} {
		if _, err := ingress.ParseRateLimits(text); (err == nil) != ok {
			t.Errorf("ParseRateLimits(%q): err %v, want ok=%v", text, err, ok)
		}
	}
}
