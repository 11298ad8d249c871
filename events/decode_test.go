package events

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/sebelas/sebelas/internal/fault"
)

// testSource is the CloudEvent source of test events.
const testSource = "/test/marketplace"

func newIncoming(eventType, contentType string, data []byte) cloudevents.Event {
	ev := cloudevents.NewEvent(cloudevents.VersionV1)
	ev.SetID("test-1")
	ev.SetSource(testSource)
	ev.SetType(eventType)
	if contentType != "" {
		ev.SetDataContentType(contentType)
	}
	ev.DataEncoded = data
	return ev
}

// newPayload returns a fresh pointer to eventType's payload struct.
func newPayload(t testing.TB, eventType string) any {
	t.Helper()
	want, ok := payloadTypes[eventType]
	if !ok {
		t.Fatalf("no payload type for %s", eventType)
	}
	return reflect.New(want).Interface()
}

func mustSample(t testing.TB, eventType string) []byte {
	t.Helper()
	data, ok := Sample(eventType)
	if !ok {
		t.Fatalf("no sample for %s", eventType)
	}
	return data
}

// asJSONValue decodes JSON into generic values for comparisons that must not
// depend on key order or spacing.
func asJSONValue(t testing.TB, data []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("%s: %v", data, err)
	}
	return v
}

// TestTypesMatchTypesGo reads the Type* constants out of types.go, so a type
// added there without a schema, a sample and a struct here fails by name.
func TestTypesMatchTypesGo(t *testing.T) {
	file, err := parser.ParseFile(token.NewFileSet(), "types.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, decl := range file.Decls {
		gen, ok := decl.(*ast.GenDecl)
		if !ok || gen.Tok != token.CONST {
			continue
		}
		for _, spec := range gen.Specs {
			value := spec.(*ast.ValueSpec)
			for i, name := range value.Names {
				if !strings.HasPrefix(name.Name, "Type") {
					continue
				}
				text, err := strconv.Unquote(value.Values[i].(*ast.BasicLit).Value)
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, text)
			}
		}
	}
	if diff := cmp.Diff(want, Types()); diff != "" {
		t.Errorf("Types() against types.go (-want +got):\n%s", diff)
	}
	got := Types()
	got[0] = "mutated" // a fresh slice each call
	if Types()[0] != want[0] {
		t.Error("Types shares its backing array")
	}
}

// TestEmbeddedFiles checks that schemas/ and samples/ hold exactly one file
// per type (plus common.json), and that unknown names find nothing.
func TestEmbeddedFiles(t *testing.T) {
	var wantSchemas, wantSamples []string
	for _, eventType := range Types() {
		wantSchemas = append(wantSchemas, eventType+".json")
		wantSamples = append(wantSamples, eventType+".json")
		if _, ok := Schema(eventType); !ok {
			t.Errorf("Schema(%s) missing", eventType)
		}
	}
	wantSchemas = append(wantSchemas, "common.json")
	sort.Strings(wantSchemas)
	sort.Strings(wantSamples)
	names := func(dir string) []string {
		var files []string
		entries, err := schemaFiles.ReadDir("schemas")
		if dir == "samples" {
			entries, err = sampleFiles.ReadDir("samples")
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			files = append(files, e.Name())
		}
		return files
	}
	if diff := cmp.Diff(wantSchemas, names("schemas")); diff != "" {
		t.Errorf("schemas/ (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantSamples, names("samples")); diff != "" {
		t.Errorf("samples/ (-want +got):\n%s", diff)
	}
	for _, name := range []string{"", "common", "dev.sebelas.charge", "../decode.go", "dev.sebelas.charge.requested.json"} {
		if _, ok := Schema(name); ok {
			t.Errorf("Schema(%q) found something", name)
		}
		if _, ok := Sample(name); ok {
			t.Errorf("Sample(%q) found something", name)
		}
	}
	// Every schema names itself by the URL it is compiled under.
	for _, eventType := range Types() {
		data, _ := Schema(eventType)
		var doc struct {
			ID     string `json:"$id"`
			Schema string `json:"$schema"`
		}
		if err := json.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		want := [2]string{schemaBaseURL + eventType + ".json", "https://json-schema.org/draft/2020-12/schema"}
		if diff := cmp.Diff(want, [2]string{doc.ID, doc.Schema}); diff != "" {
			t.Errorf("%s $id and $schema (-want +got):\n%s", eventType, diff)
		}
	}
}

// TestCompileIsLazy runs itself in a fresh process, where no other test has
// decoded anything, and checks that importing the package compiled nothing:
// a function scaling from zero must not pay for schemas before its first
// event.
func TestCompileIsLazy(t *testing.T) {
	if os.Getenv("EVENTS_LAZY_CHILD") == "1" {
		if registry.schemas != nil {
			t.Fatal("schemas compiled before first use")
		}
		if err := Warm(); err != nil || registry.schemas == nil {
			t.Fatalf("Warm did not compile: %v", err)
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCompileIsLazy$", "-test.count=1")
	cmd.Env = append(os.Environ(), "EVENTS_LAZY_CHILD=1")
	if output, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, output)
	}
}

func TestWarm(t *testing.T) {
	if err := Warm(); err != nil {
		t.Fatal(err)
	}
}

// TestSamplesDecode decodes every golden sample and encodes it back: the
// result must be the sample, field for field, so the struct tags, the schema
// and the sample all agree.
func TestSamplesDecode(t *testing.T) {
	for _, eventType := range Types() {
		sample := mustSample(t, eventType)
		out := newPayload(t, eventType)
		if err := Decode(newIncoming(eventType, cloudevents.ApplicationJSON, sample), out); err != nil {
			t.Errorf("Decode sample of %s: %v", eventType, err)
			continue
		}
		encoded, err := json.Marshal(out)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(asJSONValue(t, sample), asJSONValue(t, encoded)); diff != "" {
			t.Errorf("%s sample after decode and encode (-want +got):\n%s", eventType, diff)
		}
	}
}

// mutated returns eventType's sample changed by edit, re-encoded.
func mutated(t testing.TB, eventType string, edit func(m map[string]any)) []byte {
	t.Helper()
	decoder := json.NewDecoder(bytes.NewReader(mustSample(t, eventType)))
	decoder.UseNumber()
	var m map[string]any
	if err := decoder.Decode(&m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// raw replaces one sample field with literal JSON text, for values
// encoding/json would not produce (1e3, 1.0, huge numbers).
func raw(t testing.TB, eventType, field, literal string) []byte {
	t.Helper()
	return mutated(t, eventType, func(m map[string]any) { m[field] = json.RawMessage(literal) })
}

func TestDecodeMalformed(t *testing.T) {
	const (
		charge    = TypeChargeRequested
		screened  = TypeChargeScreened
		topup     = TypeTopupRequested
		secretMSN = "+8801700000123" // the topup sample's phone number
	)
	set := func(eventType, field string, value any) []byte {
		return mutated(t, eventType, func(m map[string]any) { m[field] = value })
	}
	drop := func(eventType, field string) []byte {
		return mutated(t, eventType, func(m map[string]any) { delete(m, field) })
	}
	tooBig := mutated(t, charge, func(m map[string]any) { m["description"] = strings.Repeat("x", BodyBytesMax) })
	reasons := make([]any, 33)
	for i := range reasons {
		reasons[i] = "rule_" + strconv.Itoa(i)
	}
	tests := []struct {
		name        string
		eventType   string
		contentType string
		data        []byte
		want        string // must appear in the error message
	}{
		{"wrong type", "dev.sebelas.charge.requestd", "", mustSample(t, charge), `type "dev.sebelas.charge.requestd" is not a sebelas event type`},
		{"empty type", "", "", mustSample(t, charge), "is not a sebelas event type"},
		{"not JSON", charge, "", []byte("charge_id=1&amount=5"), "data is not one JSON value"},
		{"truncated JSON", charge, "", mustSample(t, charge)[:40], "data is not one JSON value"},
		{"trailing data", charge, "", append(mustSample(t, charge), " x"...), "data is not one JSON value"},
		{"two values", charge, "", append(mustSample(t, charge), mustSample(t, charge)...), "data is not one JSON value"},
		{"JSON array", charge, "", []byte(`[]`), "/: is array, want object"},
		{"JSON null", charge, "", []byte(`null`), "/: is null, want object"},
		{"JSON string", charge, "", []byte(`"charge"`), "/: is string, want object"},
		{"empty data", charge, "", nil, "/: missing charge_id, marketplace"},
		{"extra field", charge, "", set(charge, "tip", 1000), `/: unknown field "tip"`},
		{"field in other case", charge, "", set(charge, "Amount", 1), `/: unknown field "Amount"`},
		{"field folded by encoding/json", charge, "", set(charge, "ſcore", 1), `unknown field`},
		{"missing required field", charge, "", drop(charge, "currency"), "/: missing currency"},
		{"negative amount", charge, "", set(charge, "amount", -1), "/amount: is below the minimum 1"},
		{"zero amount", charge, "", set(charge, "amount", 0), "/amount: is below the minimum 1"},
		{"amount as string", charge, "", set(charge, "amount", "125000"), "/amount: is string, want integer"},
		{"amount as float", charge, "", raw(t, charge, "amount", "1.5"), "/amount: is number, want integer"},
		{"amount as 1.0", charge, "", raw(t, charge, "amount", "125000.0"), "/amount: a JSON number does not fit int64"},
		{"amount with exponent", charge, "", raw(t, charge, "amount", "1e3"), "/amount: a JSON number does not fit int64"},
		{"amount above 1e15", charge, "", raw(t, charge, "amount", "1000000000000001"), "/amount: is above the maximum 1000000000000000"},
		{"amount above int64", charge, "", raw(t, charge, "amount", "99999999999999999999999"), "/amount: is above the maximum"},
		{"amount null", charge, "", raw(t, charge, "amount", "null"), "/amount: is null, want integer"},
		{"unknown currency", charge, "", set(charge, "currency", "USD"), "/currency: is not an allowed value"},
		{"lowercase currency", charge, "", set(charge, "currency", "idr"), "/currency: is not an allowed value"},
		{"over-long id", charge, "", set(charge, "charge_id", strings.Repeat("a", 65)), "/charge_id: is 65 characters, at most 64"},
		{"bad id chars", charge, "", set(charge, "charge_id", "inv#2026/11"), "/charge_id: does not match"},
		{"id with space", charge, "", set(charge, "merchant_id", "m 1"), "/merchant_id: does not match"},
		{"id starting with a dot", charge, "", set(charge, "payer_wallet", ".w1"), "/payer_wallet: does not match"},
		{"empty id", charge, "", set(charge, "charge_id", ""), "/charge_id: does not match"},
		{"body over BodyBytesMax", charge, "", tooBig, "bytes, at most 65536"},
		{"invalid UTF-8 in a string", charge, "", bytes.Replace(mustSample(t, charge), []byte(`"description": "`), []byte("\"description\": \"\xff"), 1), "data is not valid UTF-8"},
		{"wrong datacontenttype", charge, "text/plain", mustSample(t, charge), `datacontenttype "text/plain" is not application/json`},
		{"xml datacontenttype", charge, "application/xml", mustSample(t, charge), "is not application/json"},
		{"other charset", charge, "application/json; charset=latin1", mustSample(t, charge), "only charset=utf-8"},
		{"broken datacontenttype", charge, "application/json; =", mustSample(t, charge), "is not application/json"},
		{"bad date-time", charge, "", set(charge, "requested_at", "2026-11-11 00:00:03"), "/requested_at: is not a valid date-time"},
		{"date-time without offset", charge, "", set(charge, "requested_at", "2026-11-11T00:00:03"), "/requested_at: is not a valid date-time"},
		{"date-time as number", charge, "", set(charge, "requested_at", 1789000000), "/requested_at: is number, want string"},
		{"control character in description", charge, "", set(charge, "description", "line\nforged"), "/description: does not match"},
		{"description too long", charge, "", set(charge, "description", strings.Repeat("é", 257)), "/description: is 257 characters, at most 256"},
		{"device country lower case", charge, "", set(charge, "device_country", "id"), "/device_country: does not match"},
		{"score above 1000", screened, "", mutated(t, screened, func(m map[string]any) {
			m["screening"].(map[string]any)["score"] = 1001
		}), "/screening/score: is above the maximum 1000"},
		{"unknown decision", screened, "", mutated(t, screened, func(m map[string]any) {
			m["screening"].(map[string]any)["decision"] = "maybe"
		}), "/screening/decision: is not an allowed value"},
		{"too many reasons", screened, "", mutated(t, screened, func(m map[string]any) {
			m["screening"].(map[string]any)["reasons"] = reasons
		}), "/screening/reasons: has 33 items, at most 32"},
		{"reason not snake_case", screened, "", mutated(t, screened, func(m map[string]any) {
			m["screening"].(map[string]any)["reasons"] = []any{"ok", "New Device"}
		}), "/screening/reasons/1: does not match"},
		{"nested charge amount", screened, "", mutated(t, screened, func(m map[string]any) {
			m["charge"].(map[string]any)["amount"] = 0
		}), "/charge/amount: is below the minimum 1"},
		{"nested extra field", screened, "", mutated(t, screened, func(m map[string]any) {
			m["charge"].(map[string]any)["pin"] = "123456"
		}), `/charge: unknown field "pin"`},
		{"screening missing", screened, "", drop(screened, "screening"), "/: missing screening"},
		{"msisdn with letters", topup, "", set(topup, "msisdn", secretMSN+"abc"), "/msisdn: does not match"},
		{"msisdn too long", topup, "", set(topup, "msisdn", secretMSN+strings.Repeat("0", 20)), "/msisdn: is 34 characters, at most 32"},
		{"top-up names nothing", topup, "", drop(topup, "product_id"), "/: missing product_id; /: missing amount"},
		{"reason on a success", TypeChargeSucceeded, "", set(TypeChargeSucceeded, "reason", "fraud"), `unknown field "reason"`},
		{"decline without reason", TypeChargeDeclined, "", drop(TypeChargeDeclined, "reason"), "/: missing reason"},
		{"refund reason empty", TypeRefundRequested, "", set(TypeRefundRequested, "reason", ""), "/reason: is 0 characters, at least 1"},
		{"market and zone disagree", TypeSettlementDue, "", set(TypeSettlementDue, "timezone", "Asia/Jakarta"), "/timezone: is not an allowed value"},
		{"unknown market", TypeSettlementDue, "", set(TypeSettlementDue, "market", "SG"), "/market: is not an allowed value"},
		{"business date not a date", TypeSettlementDue, "", set(TypeSettlementDue, "business_date", "2026-02-30"), "/business_date: is not a valid date"},
		{"business date pattern", TypeSettlementDue, "", set(TypeSettlementDue, "business_date", "20261111"), "/business_date: is not a valid date"},
		{"market and currency disagree", TypeSettlementCompleted, "", set(TypeSettlementCompleted, "currency", "PKR"), "/currency: is not an allowed value"},
		{"negative count", TypeSettlementCompleted, "", set(TypeSettlementCompleted, "charges_count", -1), "/charges_count: is below the minimum 0"},
		{"reconcile limit zero", TypeTopupReconcile, "", set(TypeTopupReconcile, "limit", 0), "/limit: is below the minimum 1"},
		{"reconcile limit huge", TypeTopupReconcile, "", set(TypeTopupReconcile, "limit", 1_000_000), "/limit: is above the maximum 1000"},
		{"leap second", charge, "", set(charge, "requested_at", "2026-12-31T23:59:60Z"), "/requested_at: is not a valid date-time"},
		{"lower-case t", charge, "", set(charge, "requested_at", "2026-12-31t23:59:59Z"), "/requested_at: is not a valid date-time"},
		{"offset of 24 hours", charge, "", set(charge, "requested_at", "2026-12-31T23:59:59+24:00"), "/requested_at: is not a valid date-time"},
		{"February 30", charge, "", set(charge, "requested_at", "2026-02-30T00:00:00Z"), "/requested_at: is not a valid date-time"},
	}
	for _, tt := range tests {
		out := newPayload(t, TypeChargeRequested)
		if want, ok := payloadTypes[tt.eventType]; ok {
			out = reflect.New(want).Interface()
		}
		err := Decode(newIncoming(tt.eventType, tt.contentType, tt.data), out)
		if err == nil {
			t.Errorf("%s: Decode succeeded, want an error containing %q", tt.name, tt.want)
			continue
		}
		type verdict struct {
			Permanent bool
			Reason    string
			Contains  bool
			Echoes    bool
		}
		want := verdict{Permanent: true, Reason: ReasonInvalidEvent, Contains: true}
		got := verdict{
			Permanent: fault.IsPermanent(err),
			Reason:    fault.ReasonOf(err),
			Contains:  strings.Contains(err.Error(), tt.want),
			Echoes:    strings.Contains(err.Error(), secretMSN),
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: error %q (-want +got):\n%s", tt.name, err, diff)
		}
		if diff := cmp.Diff(reflect.Zero(reflect.TypeOf(out).Elem()).Interface(), reflect.ValueOf(out).Elem().Interface()); diff != "" {
			t.Errorf("%s: out not zero after failure (-want +got):\n%s", tt.name, diff)
		}
	}
}

// TestDecodeAccepts covers valid inputs at the edges of the rules.
func TestDecodeAccepts(t *testing.T) {
	tests := []struct {
		name        string
		eventType   string
		contentType string
		data        []byte
		want        any
	}{
		{"reconcile without data", TypeTopupReconcile, "", nil, &TopupReconcile{}},
		{"reconcile with empty object", TypeTopupReconcile, cloudevents.ApplicationJSON, []byte(`{}`), &TopupReconcile{}},
		{"charset utf-8", TypeTopupReconcile, "application/json; charset=UTF-8", []byte(`{"limit":5}`), &TopupReconcile{Limit: 5}},
		{"limit at max", TypeTopupReconcile, "", []byte(" {\"limit\" : 1000}\n"), &TopupReconcile{Limit: 1000}},
		{"due with a re-run date", TypeSettlementDue, "", []byte(`{"market":"PK","timezone":"Asia/Karachi","business_date":"2026-11-11"}`),
			&SettlementDue{Market: "PK", TimeZone: "Asia/Karachi", BusinessDate: "2026-11-11"}},
		{"refund of the whole charge without currency", TypeRefundRequested, "", []byte(`{"refund_id":"r1","charge_id":"c1","marketplace":"mp","amount":1000000000000000,"reason":"x","requested_at":"2026-11-11T00:00:00Z"}`),
			&RefundRequested{RefundID: "r1", ChargeID: "c1", Marketplace: "mp", Amount: 1_000_000_000_000_000, Reason: "x", RequestedAt: time.Date(2026, 11, 11, 0, 0, 0, 0, time.UTC)}},
		{"screening with null reasons", TypeChargeScreened, "", mutated(t, TypeChargeScreened, func(m map[string]any) {
			m["screening"] = map[string]any{"score": 0, "decision": "allow", "reasons": nil}
		}), nil},
		{"top-up with product and amount", TypeTopupRequested, "", mutated(t, TypeTopupRequested, func(m map[string]any) { m["amount"] = 49900 }), nil},
		{"top-up with amount only", TypeTopupRequested, "", mutated(t, TypeTopupRequested, func(m map[string]any) {
			delete(m, "product_id")
			m["amount"] = 49900
		}), nil},
		{"failed top-up with amount 0", TypeTopupFailed, "", mutated(t, TypeTopupFailed, func(m map[string]any) { m["amount"] = 0 }), nil},
		{"id of 64 characters", TypeChargeSucceeded, "", mutated(t, TypeChargeSucceeded, func(m map[string]any) {
			m["charge_id"] = "a" + strings.Repeat("-._:9", 12) + "Zz0"
		}), nil},
	}
	for _, tt := range tests {
		out := newPayload(t, tt.eventType)
		if err := Decode(newIncoming(tt.eventType, tt.contentType, tt.data), out); err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if tt.want == nil {
			continue
		}
		if diff := cmp.Diff(tt.want, out); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestDecodeZeroesReusedOut(t *testing.T) {
	out := &ChargeRequested{DeviceID: "left-over", Description: "left-over"}
	data := mutated(t, TypeChargeRequested, func(m map[string]any) {
		delete(m, "device_id")
		delete(m, "description")
	})
	if err := Decode(newIncoming(TypeChargeRequested, "", data), out); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([2]string{}, [2]string{out.DeviceID, out.Description}); diff != "" {
		t.Errorf("fields of the previous event survived (-want +got):\n%s", diff)
	}
}

func TestDecodePanicsOnWrongOut(t *testing.T) {
	sample := mustSample(t, TypeChargeRequested)
	var nilOut *ChargeRequested
	tests := []struct {
		name string
		out  any
	}{
		{"other struct", &RefundRequested{}},
		{"struct, not pointer", ChargeRequested{}},
		{"nil pointer", nilOut},
		{"nil", nil},
		{"map", &map[string]any{}},
	}
	for _, tt := range tests {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: Decode did not panic", tt.name)
				}
			}()
			_ = Decode(newIncoming(TypeChargeRequested, "", sample), tt.out)
		}()
	}
}

func TestNewEvent(t *testing.T) {
	before := time.Now()
	for _, eventType := range Types() {
		payload := newPayload(t, eventType)
		if err := Decode(newIncoming(eventType, "", mustSample(t, eventType)), payload); err != nil {
			t.Fatal(err)
		}
		// By value and by pointer alike.
		for _, p := range []any{payload, reflect.ValueOf(payload).Elem().Interface()} {
			ev, err := NewEvent(eventType, SourcePrefix+"test", p)
			if err != nil {
				t.Errorf("NewEvent(%s): %v", eventType, err)
				continue
			}
			type envelope struct {
				SpecVersion, Type, Source, ContentType string
				Base64, IDIsUUID, TimeNow              bool
			}
			_, uuidErr := uuid.Parse(ev.ID())
			want := envelope{"1.0", eventType, SourcePrefix + "test", "application/json", false, true, true}
			got := envelope{ev.SpecVersion(), ev.Type(), ev.Source(), ev.DataContentType(), ev.DataBase64, uuidErr == nil,
				!ev.Time().Before(before.Add(-time.Second)) && !ev.Time().After(time.Now().Add(time.Second))}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("NewEvent(%s) envelope (-want +got):\n%s", eventType, diff)
			}
			again := newPayload(t, eventType)
			if err := Decode(ev, again); err != nil {
				t.Errorf("Decode(NewEvent(%s)): %v", eventType, err)
			}
			if diff := cmp.Diff(payload, again); diff != "" {
				t.Errorf("NewEvent(%s) round trip (-want +got):\n%s", eventType, diff)
			}
		}
	}
}

func TestNewEventRefuses(t *testing.T) {
	SetValidateOutgoing(true)
	defer SetValidateOutgoing(false)
	var nilPayload *ChargeResult
	valid := ChargeResult{ChargeID: "c1", MerchantID: "m1", PayerWallet: "w1", Amount: 1, Currency: "PHP", At: time.Now()}
	tests := []struct {
		name      string
		eventType string
		source    string
		payload   any
		want      string
	}{
		{"unknown type", "dev.sebelas.charge.teleported", "/sebelas/charge", valid, "not a sebelas event type"},
		{"wrong payload", TypeChargeSucceeded, "/sebelas/charge", RefundResult{}, "carries events.ChargeResult"},
		{"nil payload", TypeChargeSucceeded, "/sebelas/charge", nilPayload, "nil payload"},
		{"invalid payload", TypeChargeSucceeded, "/sebelas/charge", ChargeResult{ChargeID: "c1"}, "breaks its schema"},
		{"reason on a success", TypeChargeSucceeded, "/sebelas/charge", func() ChargeResult { r := valid; r.Reason = "fraud"; return r }(), `unknown field "reason"`},
		{"empty source", TypeChargeSucceeded, "", valid, "source"},
	}
	for _, tt := range tests {
		_, err := NewEvent(tt.eventType, tt.source, tt.payload)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: NewEvent error %v, want one containing %q", tt.name, err, tt.want)
		}
	}
}

func TestResultID(t *testing.T) {
	id := ResultID("evt-1", TypeChargeSucceeded)
	parsed, err := uuid.Parse(id)
	if err != nil {
		t.Fatal(err)
	}
	type facts struct {
		Version                            uuid.Version
		Stable, DiffersByType, DiffersByID bool
		NoConcatenationClash               bool
	}
	want := facts{5, true, true, true, true}
	got := facts{
		Version:              parsed.Version(),
		Stable:               id == ResultID("evt-1", TypeChargeSucceeded),
		DiffersByType:        id != ResultID("evt-1", TypeChargeDeclined),
		DiffersByID:          id != ResultID("evt-2", TypeChargeSucceeded),
		NoConcatenationClash: ResultID("a", "b.c") != ResultID("ca", "b."),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ResultID (-want +got):\n%s", diff)
	}
	// Pinned, computed outside Go (Python's uuid.uuid5 over the namespace and
	// "dev.sebelas.charge.succeeded\x00evt-1"): the namespace and the name
	// layout must never change (see resultNamespace).
	if diff := cmp.Diff("e19507b7-df28-5d4a-b8f4-9544d0952f1a", id); diff != "" {
		t.Errorf("ResultID pinned value (-want +got):\n%s", diff)
	}
}

// FuzzDecode feeds raw bytes as the data of every type. Decode must never
// panic; an input it accepts must encode back into JSON the schema accepts
// and that decodes to the same value.
func FuzzDecode(f *testing.F) {
	types := Types()
	for i, eventType := range types {
		f.Add(uint8(i), mustSample(f, eventType))
	}
	f.Add(uint8(0), []byte(`{"amount":1e3}`))
	f.Add(uint8(0), []byte(`[]`))
	f.Fuzz(func(t *testing.T, index uint8, data []byte) {
		eventType := types[int(index)%len(types)]
		out := newPayload(t, eventType)
		err := Decode(newIncoming(eventType, "", data), out)
		if err != nil {
			if !fault.IsPermanent(err) || fault.ReasonOf(err) != ReasonInvalidEvent {
				t.Fatalf("error %v is not a permanent invalid_event", err)
			}
			return
		}
		encoded, err := json.Marshal(out)
		if err != nil {
			t.Fatalf("re-encoding an accepted %s: %v", eventType, err)
		}
		all, err := schemas()
		if err != nil {
			t.Fatal(err)
		}
		if err := validate(all[eventType], encoded); err != nil {
			t.Fatalf("re-encoded %s breaks its schema: %v\n%s", eventType, err, encoded)
		}
		again := newPayload(t, eventType)
		if err := Decode(newIncoming(eventType, "", encoded), again); err != nil {
			t.Fatalf("re-encoded %s does not decode: %v\n%s", eventType, err, encoded)
		}
		if diff := cmp.Diff(out, again); diff != "" {
			t.Fatalf("%s changed across encode and decode (-want +got):\n%s", eventType, diff)
		}
	})
}

// BenchmarkDecodeChargeScreened measures the whole per-event cost of Decode
// on the event the charge function receives: content checks, schema
// validation and the strict struct decode.
func BenchmarkDecodeChargeScreened(b *testing.B) {
	if err := Warm(); err != nil {
		b.Fatal(err)
	}
	ev := newIncoming(TypeChargeScreened, cloudevents.ApplicationJSON, mustSample(b, TypeChargeScreened))
	var out ChargeScreened
	b.ReportAllocs()
	b.SetBytes(int64(len(ev.Data())))
	for b.Loop() {
		if err := Decode(ev, &out); err != nil {
			b.Fatal(err)
		}
	}
}

// TestLargestPayload builds the largest charge.screened the schema allows,
// every string at its maximum and escaped at the worst ratio encoding/json
// has (6 bytes for '<'), and checks BodyBytesMax's headroom claim.
func TestLargestPayload(t *testing.T) {
	id := "A" + strings.Repeat("9", 63)
	reasons := make([]string, 32)
	for i := range reasons {
		reasons[i] = "r" + strings.Repeat("_", 63)
	}
	at := time.Date(2026, 11, 11, 0, 0, 0, 123456789, time.FixedZone("", 5*3600+1800))
	payload := ChargeScreened{
		Charge: ChargeRequested{
			ChargeID: id, Marketplace: id, MerchantID: id, PayerWallet: id,
			Amount: 1_000_000_000_000_000, Currency: "INR", DeviceID: id, DeviceCountry: "IN",
			Description: strings.Repeat("<", 256), RequestedAt: at,
		},
		Screening: Screening{Score: 1000, Decision: DecisionReview, Reasons: reasons, RulesVersion: id},
	}
	ev, err := NewEvent(TypeChargeScreened, SourcePrefix+"fraud", payload)
	if err != nil {
		t.Fatal(err)
	}
	const headroom = 8 // BodyBytesMax is meant to be many times the largest valid payload
	if size := len(ev.Data()); size*headroom > BodyBytesMax {
		t.Errorf("largest charge.screened is %d bytes; BodyBytesMax %d leaves less than %dx headroom", size, BodyBytesMax, headroom)
	} else {
		t.Logf("largest charge.screened: %d bytes", size)
	}
}

// TestDecodeConcurrent decodes from many goroutines at once, the way a
// function serves requests; run with -race it checks that the compiled
// schemas are shared safely.
func TestDecodeConcurrent(t *testing.T) {
	const goroutines = 8
	errs := make(chan error, goroutines)
	for i := range goroutines {
		eventType := Types()[i%len(Types())]
		ev, out := newIncoming(eventType, "", mustSample(t, eventType)), newPayload(t, eventType)
		go func() { errs <- Decode(ev, out) }()
	}
	for range goroutines {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestOutgoingUnvalidatedIsRefusedAtTheNextHop: with the producer's check
// off (production), a payload that breaks its schema is still built, and
// the consumer's Decode refuses it as permanent: one validation per hop.
func TestOutgoingUnvalidatedIsRefusedAtTheNextHop(t *testing.T) {
	SetValidateOutgoing(false)
	ev, err := NewEvent(TypeChargeSucceeded, "/sebelas/charge", ChargeResult{ChargeID: "c1"})
	if err != nil {
		t.Fatalf("NewEvent with the check off: %v", err)
	}
	var got ChargeResult
	if err := Decode(ev, &got); err == nil || !fault.IsPermanent(err) {
		t.Errorf("Decode of a schema-breaking payload = %v, want a permanent refusal", err)
	}
}
