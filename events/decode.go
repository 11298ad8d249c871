package events

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/google/uuid"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"

	"github.com/sebelas/sebelas/internal/fault"
)

// BodyBytesMax bounds the data of one event. The largest payload the
// schemas allow, a charge.screened with every string at its maximum length and
// escaped at encoding/json's worst ratio, is about 4.4 KB (TestLargestPayload
// checks it stays under an eighth of this); a real one is under 1 KB. 64 KiB
// keeps that headroom for fields added later while a flood of oversized
// events still costs little memory at the festival peak. The HTTP layer should
// refuse bigger bodies before reading them; this is the check every decoded
// event passes whatever transport brought it.
const BodyBytesMax = 64 << 10

// ReasonInvalidEvent is the fault reason of every input failure of Decode.
const ReasonInvalidEvent = "invalid_event"

// violationsMax bounds how many schema violations an error message lists:
// enough to fix a payload, not so many that one bad event floods the log.
const violationsMax = 4

// nameBytesMax bounds how much of a caller-chosen name (an event type, an
// unknown property) an error message quotes.
const nameBytesMax = 64

// schemaBaseURL is the $id prefix of every schema file. Nothing is fetched
// from it: every schema is embedded and the compiler refuses to load others.
const schemaBaseURL = "https://sebelas.dev/schemas/events/"

//go:embed schemas/*.json
var schemaFiles embed.FS

//go:embed samples/*.json
var sampleFiles embed.FS

// typeOrder is the declaration order of types.go; payloadTypes gives each type
// the struct its data decodes into.
var typeOrder = []string{
	TypeChargeRequested, TypeChargeScreened, TypeChargeSucceeded, TypeChargeDeclined,
	TypeChargeConflicted, TypeChargeHeld, TypeChargeReviewed,
	TypeRefundRequested, TypeRefundSucceeded, TypeRefundRejected, TypeRefundConflicted,
	TypeTopupRequested, TypeTopupScreened, TypeTopupSucceeded, TypeTopupFailed, TypeTopupPending, TypeTopupReconcile,
	TypeTopupReviewed, TypeTopupConflicted,
	TypeSettlementDue, TypeSettlementCompleted,
}

var payloadTypes = map[string]reflect.Type{
	TypeChargeRequested:     reflect.TypeFor[ChargeRequested](),
	TypeChargeScreened:      reflect.TypeFor[ChargeScreened](),
	TypeChargeSucceeded:     reflect.TypeFor[ChargeResult](),
	TypeChargeDeclined:      reflect.TypeFor[ChargeResult](),
	TypeChargeHeld:          reflect.TypeFor[ChargeResult](),
	TypeChargeConflicted:    reflect.TypeFor[ChargeResult](),
	TypeRefundConflicted:    reflect.TypeFor[RefundResult](),
	TypeTopupConflicted:     reflect.TypeFor[TopupResult](),
	TypeChargeReviewed:      reflect.TypeFor[ChargeReviewed](),
	TypeTopupReviewed:       reflect.TypeFor[TopupReviewed](),
	TypeRefundRequested:     reflect.TypeFor[RefundRequested](),
	TypeRefundSucceeded:     reflect.TypeFor[RefundResult](),
	TypeRefundRejected:      reflect.TypeFor[RefundResult](),
	TypeTopupRequested:      reflect.TypeFor[TopupRequested](),
	TypeTopupScreened:       reflect.TypeFor[TopupScreened](),
	TypeTopupSucceeded:      reflect.TypeFor[TopupResult](),
	TypeTopupFailed:         reflect.TypeFor[TopupResult](),
	TypeTopupPending:        reflect.TypeFor[TopupResult](),
	TypeTopupReconcile:      reflect.TypeFor[TopupReconcile](),
	TypeSettlementDue:       reflect.TypeFor[SettlementDue](),
	TypeSettlementCompleted: reflect.TypeFor[SettlementCompleted](),
}

// registry holds the compiled schemas. Compiling all of them takes a few
// milliseconds, which a function that scales from zero should not pay before
// it can answer its first health check, so it happens on first use (or in
// Warm, for callers that prefer to pay at start), exactly once.
var registry struct {
	once    sync.Once
	schemas map[string]*jsonschema.Schema
	err     error
}

func schemas() (map[string]*jsonschema.Schema, error) {
	registry.once.Do(func() { registry.schemas, registry.err = compileSchemas() })
	return registry.schemas, registry.err
}

// Warm compiles the schemas now instead of at the first Decode. An error
// means the embedded schemas are broken: a build defect, not bad input.
func Warm() error {
	_, err := schemas()
	return err
}

// refuseLoader makes every schema reference resolve inside the embedded files:
// a schema that names anything else fails to compile instead of reaching out
// to the network or the file system at run time.
type refuseLoader struct{}

func (refuseLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("schema %s is not embedded", url)
}

func compileSchemas() (map[string]*jsonschema.Schema, error) {
	compiler := jsonschema.NewCompiler()
	compiler.DefaultDraft(jsonschema.Draft2020)
	compiler.AssertFormat() // date-time and date are checks here, not annotations
	compiler.RegisterFormat(&jsonschema.Format{Name: "date-time", Validate: validateDateTime})
	compiler.UseLoader(refuseLoader{})
	entries, err := schemaFiles.ReadDir("schemas")
	if err != nil {
		return nil, err
	}
	for _, entry := range entries {
		data, err := schemaFiles.ReadFile("schemas/" + entry.Name())
		if err != nil {
			return nil, err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("events: schema %s: %w", entry.Name(), err)
		}
		if err := compiler.AddResource(schemaBaseURL+entry.Name(), doc); err != nil {
			return nil, fmt.Errorf("events: schema %s: %w", entry.Name(), err)
		}
	}
	compiled := make(map[string]*jsonschema.Schema, len(typeOrder))
	for _, eventType := range typeOrder {
		schema, err := compiler.Compile(schemaBaseURL + eventType + ".json")
		if err != nil {
			return nil, fmt.Errorf("events: schema of %s: %w", eventType, err)
		}
		compiled[eventType] = schema
	}
	return compiled, nil
}

// Types returns every event type in types.go's order (a fresh slice).
func Types() []string {
	return append([]string(nil), typeOrder...)
}

// Schema returns the JSON Schema of eventType's payload, as embedded. It
// references definitions in common.json beside it, by the $id prefix
// https://sebelas.dev/schemas/events/.
func Schema(eventType string) ([]byte, bool) {
	return readEmbedded(schemaFiles, "schemas", eventType)
}

// Sample returns the golden sample payload of eventType.
func Sample(eventType string) ([]byte, bool) {
	return readEmbedded(sampleFiles, "samples", eventType)
}

func readEmbedded(files embed.FS, dir, eventType string) ([]byte, bool) {
	if _, ok := payloadTypes[eventType]; !ok {
		return nil, false
	}
	data, err := files.ReadFile(dir + "/" + eventType + ".json") // a fresh copy
	if err != nil {
		panic(fmt.Sprintf("events: %s/%s.json is not embedded", dir, eventType))
	}
	return data, true
}

// emptyPayload stands in for an event without data. A PingSource with no data
// configured sends none, and a tick such as topup.reconcile needs nothing;
// every type with required fields still fails on "{}", naming them.
var emptyPayload = []byte("{}")

// Decode turns an incoming event into its validated payload. out must be a
// non-nil pointer to the payload struct of ev's type (see types.go); anything
// else is a programmer error and panics, so a handler that serves several
// types switches on ev.Type() first.
//
// In order: the type must be a sebelas type, datacontenttype JSON or empty,
// the data at most BodyBytesMax, valid against the type's JSON Schema, and
// decodable with no unknown field. Each failure is a permanent
// "invalid_event" fault (400, dead-lettered) naming the field at fault but not
// echoing its value, which may be a phone number. On failure *out is zero.
func Decode(ev cloudevents.Event, out any) error {
	eventType := ev.Type()
	want, ok := payloadTypes[eventType]
	if !ok {
		return invalid("type %.*q is not a sebelas event type", nameBytesMax, eventType)
	}
	target := reflect.ValueOf(out)
	if target.Kind() != reflect.Pointer || target.IsNil() || target.Elem().Type() != want {
		panic(fmt.Sprintf("events: Decode of %s needs a non-nil *events.%s, got %T", eventType, want.Name(), out))
	}
	// json.Decoder merges into what is there: zero first, so a reused struct
	// does not keep fields of the previous event.
	target.Elem().SetZero()

	if err := checkContentType(ev.DataContentType()); err != nil {
		return err
	}
	data := ev.Data()
	if len(data) > BodyBytesMax {
		return invalid("data is %d bytes, at most %d", len(data), BodyBytesMax)
	}
	if !utf8.Valid(data) {
		// encoding/json would turn it into U+FFFD: the payload handled would
		// differ from the one sent (and signed).
		return invalid("%s: data is not valid UTF-8", eventType)
	}
	if len(data) == 0 {
		data = emptyPayload
	}
	all, err := schemas()
	if err != nil {
		panic(err) // the embedded schemas are part of the build; their tests catch this
	}
	if err := validate(all[eventType], data); err != nil {
		return invalid("%s: %s", eventType, err)
	}

	// The schema has already refused unknown and differently-cased fields
	// (encoding/json would fold case); DisallowUnknownFields is the second
	// line should schema and struct ever drift apart.
	decoder := json.NewDecoder(bytes.NewReader(data))
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(out); err != nil {
		target.Elem().SetZero()
		return invalid("%s: %s", eventType, describeDecodeError(err))
	}
	return nil
}

func invalid(format string, args ...any) error {
	return fault.Permanentf(ReasonInvalidEvent, format, args...)
}

// checkContentType accepts no content type, application/json, and
// application/json with charset=utf-8 (JSON is UTF-8 by RFC 8259; any other
// charset is a producer bug worth seeing).
func checkContentType(contentType string) error {
	if contentType == "" || contentType == cloudevents.ApplicationJSON {
		return nil
	}
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil || mediaType != cloudevents.ApplicationJSON {
		return invalid("datacontenttype %.*q is not application/json", nameBytesMax, contentType)
	}
	for name, value := range params {
		if name != "charset" || !strings.EqualFold(value, "utf-8") {
			return invalid("datacontenttype %.*q: only charset=utf-8 is allowed", nameBytesMax, contentType)
		}
	}
	return nil
}

// validateDateTime is the schema's "date-time": RFC 3339 exactly as
// time.Time decodes it (upper-case T and Z, no leap second) and with an
// offset under 24 hours as RFC 3339 wants, so every date-time the schema passes also decodes, and a bad one is
// reported with its field name by the schema instead of without it by
// encoding/json.
func validateDateTime(v any) error {
	s, ok := v.(string)
	if !ok {
		return nil // the type keyword reports non-strings
	}
	var t time.Time
	if err := t.UnmarshalText([]byte(s)); err != nil {
		return errors.New("not an RFC 3339 date-time")
	}
	// Go's strict parse has checked the shape: the string ends in Z or in
	// ±hh:mm. It lets hh be 24, which RFC 3339 does not.
	if n := len(s); s[n-1] != 'Z' && s[n-5:n-3] > "23" {
		return errors.New("offset of 24 hours or more")
	}
	return nil
}

// validate checks raw JSON against a compiled schema. The JSON must be one
// value with nothing after it.
func validate(schema *jsonschema.Schema, data []byte) error {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("data is not one JSON value: %s", describeSyntaxError(err))
	}
	if err := schema.Validate(doc); err != nil {
		return errors.New(describeViolations(err))
	}
	return nil
}

func describeSyntaxError(err error) string {
	var syntax *json.SyntaxError
	if errors.As(err, &syntax) {
		return fmt.Sprintf("%s (at byte %d)", syntax.Error(), syntax.Offset)
	}
	return err.Error() // EOF and "invalid character after top-level value": no payload text
}

// describeViolations lists the leaves of a schema validation error, each as
// its JSON pointer and what is wrong there. The pointers name schema-known
// properties and array indices only; values are never quoted.
func describeViolations(err error) string {
	var root *jsonschema.ValidationError
	if !errors.As(err, &root) {
		return "schema: " + err.Error()
	}
	var leaves []string
	total := 0
	var walk func(*jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			total++
			if len(leaves) < violationsMax {
				leaves = append(leaves, describeViolation(e))
			}
			return
		}
		for _, cause := range e.Causes {
			walk(cause)
		}
	}
	walk(root)
	if total > len(leaves) {
		leaves = append(leaves, fmt.Sprintf("and %d more", total-len(leaves)))
	}
	return strings.Join(leaves, "; ")
}

func describeViolation(e *jsonschema.ValidationError) string {
	field := "/" + strings.Join(e.InstanceLocation, "/")
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		return fmt.Sprintf("%s: missing %s", field, strings.Join(k.Missing, ", "))
	case *kind.AdditionalProperties:
		names := k.Properties
		if len(names) > violationsMax {
			names = names[:violationsMax]
		}
		quoted := make([]string, len(names))
		for i, name := range names {
			quoted[i] = fmt.Sprintf("%.*q", nameBytesMax, name)
		}
		return fmt.Sprintf("%s: unknown field %s", field, strings.Join(quoted, ", "))
	case *kind.Type:
		return fmt.Sprintf("%s: is %s, want %s", field, k.Got, strings.Join(k.Want, " or "))
	case *kind.Format:
		return fmt.Sprintf("%s: is not a valid %s", field, k.Want)
	case *kind.Enum, *kind.Const:
		return fmt.Sprintf("%s: is not an allowed value", field)
	case *kind.Pattern:
		return fmt.Sprintf("%s: does not match %s", field, k.Want)
	case *kind.MaxLength:
		return fmt.Sprintf("%s: is %d characters, at most %d", field, k.Got, k.Want)
	case *kind.MinLength:
		return fmt.Sprintf("%s: is %d characters, at least %d", field, k.Got, k.Want)
	case *kind.Minimum:
		return fmt.Sprintf("%s: is below the minimum %s", field, k.Want.RatString())
	case *kind.Maximum:
		return fmt.Sprintf("%s: is above the maximum %s", field, k.Want.RatString())
	case *kind.MaxItems:
		return fmt.Sprintf("%s: has %d items, at most %d", field, k.Got, k.Want)
	default:
		return fmt.Sprintf("%s: violates %s", field, strings.Join(e.ErrorKind.KeywordPath(), "/"))
	}
}

// describeDecodeError names the field a value did not fit after the schema
// passed: an integer written as 1.0 or 1e3, a date-time Go cannot represent.
func describeDecodeError(err error) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		what, _, _ := strings.Cut(typeErr.Value, " ") // "number 1.5" -> "number": no value
		return fmt.Sprintf("/%s: a JSON %s does not fit %s", strings.ReplaceAll(typeErr.Field, ".", "/"), what, typeErr.Type)
	}
	var parseErr *time.ParseError
	if errors.As(err, &parseErr) {
		return "a date-time is not RFC 3339 as Go reads it: " + parseErr.Message
	}
	return "does not decode: " + err.Error()
}

// EnvValidateOutgoing turns ValidateOutgoing on at start when "true".
const EnvValidateOutgoing = "SEBELAS_VALIDATE_OUTGOING"

var validateOutgoing atomic.Bool

func init() { validateOutgoing.Store(os.Getenv(EnvValidateOutgoing) == "true") }

// SetValidateOutgoing turns the schema check of NewEvent's payloads on or
// off for the process.
func SetValidateOutgoing(on bool) { validateOutgoing.Store(on) }

// NewEvent builds an outgoing event: specversion 1.0, a random id, the time
// now, datacontenttype application/json, and payload (the struct of
// eventType, or a pointer to it) as data. With SetValidateOutgoing(true) (the
// test command and `sebelas dev` turn it on) the payload is validated
// against the type's schema here, so a producer bug fails in the producer
// and its tests, not as a dead letter at the consumer. In production it is
// off: the consumer validates every event it receives (Decode), so one
// validation per hop is enough, and the producer's own is ~15% of a
// screening's CPU. A reply that must keep its id
// across replays sets it afterwards with ResultID.
func NewEvent(eventType, source string, payload any) (cloudevents.Event, error) {
	want, ok := payloadTypes[eventType]
	if !ok {
		return cloudevents.Event{}, fmt.Errorf("events: %.*q is not a sebelas event type", nameBytesMax, eventType)
	}
	got := reflect.TypeOf(payload)
	if got != want && got != reflect.PointerTo(want) {
		return cloudevents.Event{}, fmt.Errorf("events: %s carries events.%s, got %T", eventType, want.Name(), payload)
	}
	if got.Kind() == reflect.Pointer && reflect.ValueOf(payload).IsNil() {
		return cloudevents.Event{}, fmt.Errorf("events: %s with a nil payload", eventType)
	}
	data, err := json.Marshal(payload)
	if err != nil {
		return cloudevents.Event{}, fmt.Errorf("events: encoding %s: %w", eventType, err)
	}
	if len(data) > BodyBytesMax {
		return cloudevents.Event{}, fmt.Errorf("events: %s payload is %d bytes, at most %d", eventType, len(data), BodyBytesMax)
	}
	if validateOutgoing.Load() {
		all, err := schemas()
		if err != nil {
			return cloudevents.Event{}, err
		}
		if err := validate(all[eventType], data); err != nil {
			return cloudevents.Event{}, fmt.Errorf("events: outgoing %s breaks its schema: %w", eventType, err)
		}
	}

	ev := cloudevents.NewEvent(cloudevents.VersionV1)
	ev.SetID(uuid.NewString())
	ev.SetSource(source)
	ev.SetType(eventType)
	ev.SetTime(time.Now().UTC())
	ev.SetDataContentType(cloudevents.ApplicationJSON)
	// Set the encoded bytes directly: SetData with a []byte would mark them
	// base64 and a structured-mode envelope would carry data_base64.
	ev.DataEncoded = data
	ev.DataBase64 = false
	if err := ev.Validate(); err != nil {
		return cloudevents.Event{}, fmt.Errorf("events: %s: %w", eventType, err)
	}
	return ev, nil
}

// resultNamespace is the UUID namespace of ResultID. It is fixed forever:
// changing it changes every reply id, and a duplicate replayed after the
// deploy would then not be recognised by consumers that dedupe on source+id.
var resultNamespace = uuid.MustParse("922174cc-8b9b-4e3a-a428-c037f159dc26")

// ResultID derives the id of the reply of type eventType to the event (or
// business id) sourceEventID: a name-based UUID (version 5, SHA-1), so a
// handler that replays an outcome for a duplicate emits the same id again and
// consumers that dedupe on source+id see one event. Pass the business id
// (charge_id, topup_id, ...) when a re-sent request may arrive under a new
// CloudEvent id and must still get the same reply id.
func ResultID(sourceEventID string, eventType string) string {
	// A NUL ends the type: no event type contains one, so distinct pairs
	// never hash the same bytes.
	name := make([]byte, 0, len(eventType)+1+len(sourceEventID))
	name = append(name, eventType...)
	name = append(name, 0)
	name = append(name, sourceEventID...)
	return uuid.NewSHA1(resultNamespace, name).String()
}
