// Package events holds every CloudEvent type of sebelas: the type names, the
// payload structs, a JSON Schema per payload (schemas/) and a golden sample per
// type (samples/). Decode is the one entry point every function uses to turn an
// incoming event into a validated payload.
//
// Amounts are always integer minor units beside an ISO 4217 currency code; a
// float never carries money.
package events

import "time"

// Source is the CloudEvent source prefix of events emitted by sebelas itself.
const SourcePrefix = "/sebelas/"

// Event types, reverse-DNS as in DESIGN.md: dev.sebelas.<noun>.<verb>.
const (
	TypeChargeRequested = "dev.sebelas.charge.requested"
	TypeChargeScreened  = "dev.sebelas.charge.screened"
	TypeChargeSucceeded = "dev.sebelas.charge.succeeded"
	TypeChargeDeclined  = "dev.sebelas.charge.declined"
	// TypeChargeConflicted answers a charge_id reused with other content:
	// the request is refused, the charge is unchanged and its own outcome
	// stays the answer for the id (likewise for refunds and top-ups).
	TypeChargeConflicted = "dev.sebelas.charge.conflicted"
	// TypeChargeHeld is the non-final outcome of a charge fraud sent to
	// review; TypeChargeReviewed is the risk team's decision on it (review.go).
	TypeChargeHeld     = "dev.sebelas.charge.held"
	TypeChargeReviewed = "dev.sebelas.charge.reviewed"

	TypeRefundRequested  = "dev.sebelas.refund.requested"
	TypeRefundSucceeded  = "dev.sebelas.refund.succeeded"
	TypeRefundRejected   = "dev.sebelas.refund.rejected"
	TypeRefundConflicted = "dev.sebelas.refund.conflicted"

	TypeTopupRequested  = "dev.sebelas.topup.requested"
	TypeTopupScreened   = "dev.sebelas.topup.screened"
	TypeTopupSucceeded  = "dev.sebelas.topup.succeeded"
	TypeTopupFailed     = "dev.sebelas.topup.failed"
	TypeTopupPending    = "dev.sebelas.topup.pending"
	TypeTopupReconcile  = "dev.sebelas.topup.reconcile"
	TypeTopupReviewed   = "dev.sebelas.topup.reviewed"
	TypeTopupConflicted = "dev.sebelas.topup.conflicted"

	TypeSettlementDue       = "dev.sebelas.settlement.due"
	TypeSettlementCompleted = "dev.sebelas.settlement.completed"
)

// Fraud decisions carried in Screening.Decision.
const (
	DecisionAllow  = "allow"
	DecisionReview = "review"
	DecisionDeny   = "deny"
)

// Decline and rejection reasons: machine-readable, stable, snake_case.
const (
	ReasonInsufficientFunds   = "insufficient_funds"
	ReasonFraud               = "fraud"
	ReasonFraudReview         = "fraud_review"
	ReasonWalletFrozen        = "wallet_frozen"
	ReasonWalletNotFound      = "wallet_not_found"
	ReasonCurrencyMismatch    = "currency_mismatch"
	ReasonConflict            = "conflict"
	ReasonAmountLimit         = "amount_limit"
	ReasonUnknownCharge       = "unknown_charge"
	ReasonChargeNotRefundable = "charge_not_refundable"
	ReasonRefundExceedsCharge = "refund_exceeds_charge"
)

// ChargeRequested is sent by a marketplace to take money from a payer's
// wallet for a merchant. ChargeID is chosen by the caller and is the
// idempotency key: the same ChargeID with the same content is one charge, with
// other content it is a conflict.
type ChargeRequested struct {
	ChargeID      string    `json:"charge_id"`
	Marketplace   string    `json:"marketplace"`
	MerchantID    string    `json:"merchant_id"`
	PayerWallet   string    `json:"payer_wallet"`
	Amount        int64     `json:"amount"`
	Currency      string    `json:"currency"`
	DeviceID      string    `json:"device_id,omitempty"`
	DeviceCountry string    `json:"device_country,omitempty"`
	Description   string    `json:"description,omitempty"`
	RequestedAt   time.Time `json:"requested_at"`
}

// Screening is fraud's verdict on a payment.
type Screening struct {
	Score        int      `json:"score"` // 0 (clean) to 1000 (certain fraud)
	Decision     string   `json:"decision"`
	Reasons      []string `json:"reasons"`
	RulesVersion string   `json:"rules_version,omitempty"`
}

// ChargeScreened is fraud's answer to ChargeRequested; only fraud emits it.
type ChargeScreened struct {
	Charge    ChargeRequested `json:"charge"`
	Screening Screening       `json:"screening"`
}

// ChargeResult is the payload of charge.succeeded and charge.declined.
// Reason is empty on success and required on decline.
type ChargeResult struct {
	ChargeID    string    `json:"charge_id"`
	MerchantID  string    `json:"merchant_id"`
	PayerWallet string    `json:"payer_wallet"`
	Amount      int64     `json:"amount"`
	Currency    string    `json:"currency"`
	Reason      string    `json:"reason,omitempty"`
	Detail      string    `json:"detail,omitempty"`
	At          time.Time `json:"at"`
}

// RefundRequested asks to give back part or all of a charge to its payer.
// Currency is optional; when given it must be the charge's.
type RefundRequested struct {
	RefundID    string    `json:"refund_id"`
	ChargeID    string    `json:"charge_id"`
	Marketplace string    `json:"marketplace"`
	Amount      int64     `json:"amount"`
	Currency    string    `json:"currency,omitempty"`
	Reason      string    `json:"reason"`
	RequestedAt time.Time `json:"requested_at"`
}

// RefundResult is the payload of refund.succeeded and refund.rejected.
type RefundResult struct {
	RefundID      string    `json:"refund_id"`
	ChargeID      string    `json:"charge_id"`
	PayerWallet   string    `json:"payer_wallet,omitempty"`
	MerchantID    string    `json:"merchant_id,omitempty"`
	Amount        int64     `json:"amount"`
	Currency      string    `json:"currency,omitempty"`
	RefundedTotal int64     `json:"refunded_total"`
	Reason        string    `json:"reason,omitempty"`
	Detail        string    `json:"detail,omitempty"`
	At            time.Time `json:"at"`
}

// TopupRequested is sent by the wallet app to buy airtime or data for a phone.
// Either ProductID or Amount names what is bought.
type TopupRequested struct {
	TopupID       string    `json:"topup_id"`
	PayerWallet   string    `json:"payer_wallet"`
	MSISDN        string    `json:"msisdn"`
	ProductID     string    `json:"product_id,omitempty"`
	Amount        int64     `json:"amount,omitempty"`
	Currency      string    `json:"currency"`
	DeviceID      string    `json:"device_id,omitempty"`
	DeviceCountry string    `json:"device_country,omitempty"`
	RequestedAt   time.Time `json:"requested_at"`
}

// TopupScreened is fraud's answer to TopupRequested; only fraud emits it.
type TopupScreened struct {
	Topup     TopupRequested `json:"topup"`
	Screening Screening      `json:"screening"`
}

// TopupResult is the payload of topup.succeeded, topup.failed and
// topup.pending. The phone number appears only masked.
type TopupResult struct {
	TopupID      string    `json:"topup_id"`
	PayerWallet  string    `json:"payer_wallet"`
	MSISDNMasked string    `json:"msisdn_masked"`
	Operator     string    `json:"operator,omitempty"`
	ProductID    string    `json:"product_id,omitempty"`
	Amount       int64     `json:"amount"`
	Currency     string    `json:"currency"`
	OperatorRef  string    `json:"operator_ref,omitempty"`
	Reason       string    `json:"reason,omitempty"`
	At           time.Time `json:"at"`
}

// TopupReconcile is the minute tick that resolves pending top-ups.
type TopupReconcile struct {
	Limit int `json:"limit,omitempty"` // pending top-ups to look at in one tick
}

// SettlementDue is the tick, one per market time zone, shortly after local
// midnight. BusinessDate, when set (YYYY-MM-DD), settles that local date
// instead of the day before the tick: the operator's re-run.
type SettlementDue struct {
	Market       string `json:"market"` // ISO 3166 alpha-2: ID, PH, MY, TH, BD, PK, IN
	TimeZone     string `json:"timezone"`
	BusinessDate string `json:"business_date,omitempty"`
}

// SettlementCompleted reports one merchant's settled day.
type SettlementCompleted struct {
	SettlementID string `json:"settlement_id"`
	MerchantID   string `json:"merchant_id"`
	Market       string `json:"market"`
	Currency     string `json:"currency"`
	BusinessDate string `json:"business_date"`
	ChargesCount int64  `json:"charges_count"`
	ChargesTotal int64  `json:"charges_total"`
	RefundsCount int64  `json:"refunds_count"`
	RefundsTotal int64  `json:"refunds_total"`
	// The late sums count again the units (included above) that were dated
	// before business_date: they committed after their own day was
	// settled, and are settled here.
	LateChargesCount int64 `json:"late_charges_count"`
	LateChargesTotal int64 `json:"late_charges_total"`
	LateRefundsCount int64 `json:"late_refunds_count"`
	LateRefundsTotal int64 `json:"late_refunds_total"`
	Net              int64 `json:"net"`
	// Version counts the batches settled into this settlement; a later
	// version (late units) supersedes an earlier one.
	Version int64     `json:"version"`
	At      time.Time `json:"at"`
}
