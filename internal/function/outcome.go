package function

import (
	"encoding/json"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/sebelas/sebelas/internal/telemetry"
)

// outcomeFields are the parts of any reply's data the outcome metric reads:
// results carry currency and reason at the top, screenings inside the
// charge or top-up with fraud's decision, top-up results their operator.
// Nothing else of the payload is decoded, and nothing of it is logged.
type outcomeFields struct {
	Currency  string                     `json:"currency"`
	Reason    string                     `json:"reason"`
	Operator  string                     `json:"operator"`
	Charge    *struct{ Currency string } `json:"charge"`
	Topup     *struct{ Currency string } `json:"topup"`
	Screening *struct{ Decision string } `json:"screening"`
}

// countOutcome counts a reply on sebelas_outcomes_total: its type, market,
// reason (fraud's decision for a screening) and, for top-ups, operator.
func countOutcome(fn string, reply *cloudevents.Event) {
	var f outcomeFields
	// A reply the handler built is valid JSON; if it is not, it is still
	// counted, under no market and no reason.
	_ = json.Unmarshal(reply.Data(), &f)
	currency, reason := f.Currency, f.Reason
	switch {
	case f.Charge != nil && currency == "":
		currency = f.Charge.Currency
	case f.Topup != nil && currency == "":
		currency = f.Topup.Currency
	}
	if f.Screening != nil && reason == "" {
		reason = f.Screening.Decision
	}
	telemetry.Outcome(fn, reply.Type(), currency, reason, f.Operator)
}
