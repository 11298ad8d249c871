// Package fault names the kinds of failure a handler can meet and maps each
// kind to the one HTTP status the Broker acts on. It is the single place where
// that mapping lives, so every function answers the same way:
//
//   - Permanent: the event can never succeed (schema, unknown currency, bad
//     MSISDN, a business id reused with other content). 400: the Broker sends
//     it to the dead-letter sink instead of retrying.
//   - Throttled: storage or a partner asked us to slow down. 429: retry with
//     backoff.
//   - Transient: storage down, timeout, crash of a dependency, or an event that
//     arrived before the one it depends on. 503: retry with backoff.
//   - TooLarge: a body over the limit. 413, never retried (a kind of
//     permanent).
//   - Unsupported: no or an unknown CloudEvents specversion, or a content mode
//     we do not read. 415, never retried (a kind of permanent).
//
// Errors without a kind are treated as transient: retrying an unknown failure
// is safe because every handler is idempotent, while dead-lettering it could
// strand money.
package fault

import (
	"errors"
	"fmt"
	"net/http"
)

// Kind classifies an error for the delivery layer.
type Kind int

const (
	// KindTransient is the zero value on purpose: unknown errors are retried.
	KindTransient Kind = iota
	KindPermanent
	KindThrottled
	KindTooLarge
	KindUnsupported
)

func (k Kind) String() string {
	switch k {
	case KindPermanent:
		return "permanent"
	case KindThrottled:
		return "throttled"
	case KindTooLarge:
		return "too_large"
	case KindUnsupported:
		return "unsupported"
	default:
		return "transient"
	}
}

// Error carries a kind and a machine-readable reason beside the cause.
type Error struct {
	Kind   Kind
	Reason string // short snake_case reason, safe to log and to put in events
	Err    error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return e.Kind.String() + ": " + e.Reason
	}
	return e.Kind.String() + ": " + e.Reason + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Permanent wraps err as a failure that retrying cannot fix.
func Permanent(reason string, err error) error {
	return &Error{Kind: KindPermanent, Reason: reason, Err: err}
}

// Permanentf is Permanent with a formatted cause.
func Permanentf(reason, format string, args ...any) error {
	return Permanent(reason, fmt.Errorf(format, args...))
}

// Transient wraps err as a failure a later retry may not meet.
func Transient(reason string, err error) error {
	return &Error{Kind: KindTransient, Reason: reason, Err: err}
}

// Throttled wraps err as a request to slow down.
func Throttled(reason string, err error) error {
	return &Error{Kind: KindThrottled, Reason: reason, Err: err}
}

// TooLarge wraps err as a body over a limit: 413, never retried.
func TooLarge(reason string, err error) error {
	return &Error{Kind: KindTooLarge, Reason: reason, Err: err}
}

// Unsupported wraps err as a format the receiver does not read: 415, never
// retried.
func Unsupported(reason string, err error) error {
	return &Error{Kind: KindUnsupported, Reason: reason, Err: err}
}

// KindOf returns the kind of the outermost fault in err's chain.
func KindOf(err error) Kind {
	var fe *Error
	if errors.As(err, &fe) {
		return fe.Kind
	}
	return KindTransient
}

// ReasonOf returns the reason of the outermost fault, or "internal".
func ReasonOf(err error) string {
	var fe *Error
	if errors.As(err, &fe) && fe.Reason != "" {
		return fe.Reason
	}
	return "internal"
}

// IsPermanent reports whether err can never succeed on retry (permanent,
// too large or unsupported).
func IsPermanent(err error) bool {
	if err == nil {
		return false
	}
	switch KindOf(err) {
	case KindPermanent, KindTooLarge, KindUnsupported:
		return true
	}
	return false
}

// Status maps err to the HTTP status a CloudEvents handler answers with.
// nil means done: 200.
func Status(err error) int {
	if err == nil {
		return http.StatusOK
	}
	switch KindOf(err) {
	case KindPermanent:
		return http.StatusBadRequest
	case KindThrottled:
		return http.StatusTooManyRequests
	case KindTooLarge:
		return http.StatusRequestEntityTooLarge
	case KindUnsupported:
		return http.StatusUnsupportedMediaType
	default:
		return http.StatusServiceUnavailable
	}
}
