package events

import "time"

// Manual review. When fraud answers `review`, the charge is held: recorded,
// no money moved, charge.held sent to the marketplace (not a final outcome).
// A person on the risk team then decides, and their tool publishes
// charge.reviewed (or topup.reviewed), signed like a screened event
// (internal/signing). The consumer applies the first decision it sees for the
// payment and replays that outcome for every later one: approve moves the
// money (or declines it if the wallet can no longer pay), reject declines it
// with reason "fraud".

// Review decisions carried in ChargeReviewed.Decision and TopupReviewed.Decision.
const (
	ReviewApprove = "approve"
	ReviewReject  = "reject"
)

// ChargeReviewed is the risk team's decision on a held charge.
type ChargeReviewed struct {
	ChargeID  string    `json:"charge_id"`
	Decision  string    `json:"decision"` // ReviewApprove or ReviewReject
	Reviewer  string    `json:"reviewer"` // the person's id, for the audit trail
	Note      string    `json:"note,omitempty"`
	DecidedAt time.Time `json:"decided_at"`
}

// TopupReviewed is the risk team's decision on a top-up held for review.
type TopupReviewed struct {
	TopupID   string    `json:"topup_id"`
	Decision  string    `json:"decision"` // ReviewApprove or ReviewReject
	Reviewer  string    `json:"reviewer"`
	Note      string    `json:"note,omitempty"`
	DecidedAt time.Time `json:"decided_at"`
}
