package events

import (
	"fmt"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
)

// NewOutcome builds the outcome event of a business operation (a charge, a
// refund, a top-up) so that a replayed duplicate is the very same event:
// its id is derived from idBasis and its type, its time is the outcome's,
// its subject the business id. Consumers drop the second copy by id.
//
// idBasis is the business id for a stored outcome; a fact about one delivery
// only (a conflict) passes DeliveryKey of that delivery instead.
func NewOutcome(eventType, source, idBasis, subject string, at time.Time, payload any) (cloudevents.Event, error) {
	ev, err := NewEvent(eventType, source, payload)
	if err != nil {
		return cloudevents.Event{}, fmt.Errorf("build %s: %w", eventType, err)
	}
	ev.SetID(ResultID(idBasis, eventType))
	ev.SetTime(at)
	ev.SetSubject(subject)
	return ev, nil
}

// DeliveryKey names one delivered event: CloudEvents identify an event by
// source and id together.
func DeliveryKey(ev cloudevents.Event) string { return ev.Source() + "|" + ev.ID() }
