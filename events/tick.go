package events

import cloudevents "github.com/cloudevents/sdk-go/v2"

// Knative PingSource events always have this type; ceOverrides can add
// extensions but not change the type. The PingSources of infra/knative add
// TickTypeExtension naming the sebelas type the tick stands for.
const (
	TypePing          = "dev.knative.sources.ping"
	TickTypeExtension = "sebelastype"
)

// tickTypes are the sebelas types a PingSource may stand for.
var tickTypes = map[string]bool{TypeSettlementDue: true, TypeTopupReconcile: true}

// FromTick returns ev with its type replaced by the sebelas type a
// PingSource tick stands for, so the handler decodes it like the event an
// operator publishes by hand. Events that are not ticks are returned as they
// are; a tick naming no known type is an invalid event.
func FromTick(ev cloudevents.Event) (cloudevents.Event, error) {
	if ev.Type() != TypePing {
		return ev, nil
	}
	v, ok := ev.Extensions()[TickTypeExtension]
	t, isString := v.(string)
	if !ok || !isString || !tickTypes[t] {
		return ev, invalid("ping event without a known %s extension", TickTypeExtension)
	}
	out := ev.Clone()
	out.SetType(t)
	return out, nil
}
