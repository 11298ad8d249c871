package function

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/sebelas/sebelas/internal/fault"
)

// jsonDepthMax bounds the nesting of a structured envelope or JSON data. The
// deepest sebelas payload is 3 levels; 32 leaves room without letting a
// 20,000-deep document walk a decoder's recursion.
const jsonDepthMax = 32

// Reasons of the input failures the receiver answers itself (the handler
// never runs for them, so nothing is written).
const (
	reasonBodyTooLarge       = "body_too_large"
	reasonBodyUnreadable     = "body_unreadable"
	reasonSpecversion        = "unsupported_specversion"
	reasonMalformedEnvelope  = "malformed_event"
	reasonInvalidUTF8        = "invalid_utf8"
	reasonJSONTooDeep        = "json_too_deep"
	contentTypeStructuredCE  = "application/cloudevents+json"
	contentTypeBatchCE       = "application/cloudevents-batch+json"
	ceHeaderPrefixLowerBytes = 3 // "ce-"
)

// receive reads one CloudEvent from r, binary or structured mode, and
// refuses with a fault every input that can never become a valid event: an
// oversized body (413, chunked or not), no or an unknown specversion or a
// batch (415), a malformed envelope, empty required attributes, bad
// data_base64, JSON nested too deep, invalid UTF-8 in an attribute or the
// data (400). encoding/json would silently turn invalid UTF-8 into U+FFFD:
// the event handled would differ from the event sent, signature and all.
func receive(w http.ResponseWriter, r *http.Request) (cloudevents.Event, error) {
	if r.ContentLength > requestBytesMax {
		return cloudevents.Event{}, fault.TooLarge(reasonBodyTooLarge, fmt.Errorf("content-length %d, at most %d", r.ContentLength, requestBytesMax))
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, requestBytesMax))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return cloudevents.Event{}, fault.TooLarge(reasonBodyTooLarge, fmt.Errorf("body over %d bytes", requestBytesMax))
		}
		return cloudevents.Event{}, fault.Permanent(reasonBodyUnreadable, err)
	}
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	structured := mediaType == contentTypeStructuredCE
	switch {
	case mediaType == contentTypeBatchCE:
		return cloudevents.Event{}, fault.Unsupported(reasonSpecversion, errors.New("batched events are not read"))
	case structured:
		if err := checkStructured(body); err != nil {
			return cloudevents.Event{}, err
		}
	default:
		if err := checkBinaryHeaders(r.Header); err != nil {
			return cloudevents.Event{}, err
		}
	}
	evp, err := binding.ToEvent(r.Context(), cehttp.NewMessage(r.Header, io.NopCloser(bytes.NewReader(body))))
	if err != nil {
		return cloudevents.Event{}, fault.Permanent(reasonMalformedEnvelope, err)
	}
	ev := *evp
	if err := ev.Validate(); err != nil {
		return cloudevents.Event{}, fault.Permanent(reasonMalformedEnvelope, err)
	}
	return ev, checkData(ev.Data())
}

// checkStructured checks a structured-mode envelope before the SDK reads
// it: UTF-8, bounded depth, one JSON object with specversion 1.0.
func checkStructured(body []byte) error {
	if !utf8.Valid(body) {
		return fault.Permanentf(reasonInvalidUTF8, "structured envelope is not valid UTF-8")
	}
	if err := checkDepth(body); err != nil {
		return err
	}
	var head struct {
		SpecVersion *string `json:"specversion"`
	}
	if err := json.Unmarshal(body, &head); err != nil {
		return fault.Permanent(reasonMalformedEnvelope, err)
	}
	if head.SpecVersion == nil || *head.SpecVersion != cloudevents.VersionV1 {
		return fault.Unsupported(reasonSpecversion, errors.New("specversion missing or not 1.0"))
	}
	return nil
}

// checkBinaryHeaders checks a binary-mode request's ce- headers: specversion
// 1.0 and every value valid UTF-8.
func checkBinaryHeaders(h http.Header) error {
	if v := h.Get("Ce-Specversion"); v != cloudevents.VersionV1 {
		return fault.Unsupported(reasonSpecversion, errors.New("ce-specversion missing or not 1.0"))
	}
	for name, values := range h {
		if len(name) < ceHeaderPrefixLowerBytes || !strings.EqualFold(name[:ceHeaderPrefixLowerBytes], "ce-") {
			continue
		}
		for _, v := range values {
			if !utf8.ValidString(v) {
				return fault.Permanentf(reasonInvalidUTF8, "header %.32s is not valid UTF-8", name)
			}
		}
	}
	return nil
}

// checkData refuses data that is not UTF-8 (every sebelas event is JSON)
// or JSON nested deeper than jsonDepthMax (in binary mode the data is the
// body; in structured mode data_base64 decodes to bytes never checked
// before).
func checkData(data []byte) error {
	if !utf8.Valid(data) {
		return fault.Permanentf(reasonInvalidUTF8, "data is not valid UTF-8")
	}
	return checkDepth(data)
}

// checkDepth scans JSON-ish bytes for bracket nesting deeper than
// jsonDepthMax, outside strings. It is not a validator: what it passes is
// parsed properly later.
func checkDepth(data []byte) error {
	depth := 0
	inString, escaped := false, false
	for _, c := range data {
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			depth++
			if depth > jsonDepthMax {
				return fault.Permanentf(reasonJSONTooDeep, "JSON nested deeper than %d", jsonDepthMax)
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return nil
}

// respond writes the answer to one event: the reply event in binary mode
// with the status of err, or the status of err with "kind: reason" as text
// (the dead-letter record's knativeerrordata says why without payloads).
func respond(ctx context.Context, w http.ResponseWriter, reply *cloudevents.Event, err error) error {
	status := fault.Status(err)
	if err != nil {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		_, werr := fmt.Fprintf(w, "%s: %s\n", fault.KindOf(err), fault.ReasonOf(err))
		return werr
	}
	if reply == nil {
		w.WriteHeader(status)
		return nil
	}
	return cehttp.WriteResponseWriter(ctx, (*binding.EventMessage)(reply), status, w)
}
