package fraud

import (
	"strconv"
	"strings"
)

// Money flows, in the same counters item as velocity (velocity.go), so that
// they cost no extra round trip on the payer's side:
//
//   - recent payees (`q0`..`q7`): the last payee of each of recentPayees
//     slots (slot by payee hash), with the time and amount. The payer's
//     write SETs its payee's slot; the old image tells how many distinct
//     payees the wallet paid in the last hour and day and how many of them
//     got a probe-sized amount (card testing: tiny payments at many
//     merchants). Two payees sharing a slot count once, so the counts
//     saturate below recentPayees: they err towards allowing, never towards
//     inventing a pattern.
//   - recent inflows (`r0`..`r7`): the same for money received, written on
//     the RECEIVER's item by a transfer to it (and, offline, by a cash-in),
//     with its first and last arrival (`fi`, `li`). On the receiver's side
//     the old image gives fan-in (distinct payers and money in over a day,
//     how long the account has received money); on the wallet's own side,
//     when it pays, it gives in-then-out (money received within the hour
//     and how long ago the last arrived).
//
// The receiver's write is a second UpdateItem, made only for transfers
// between wallets (txn_type transfer), in parallel with the payer's. A
// marketplace charge (txn_type payment) pays a merchant: a merchant's fan-in
// is its business, and a hot merchant's item written by every sale would
// throttle at the festival. So a charge stays at one round trip.
const (
	recentPayees  = 12
	recentInflows = 12
	// flowHashChars of a payee's or payer's hash name it in a slot: two
	// of a wallet's twelve recent payees sharing 24 bits is negligible.
	flowHashChars = 4
)

// flowSlot is one recent payee or payer: its hash, when, how much.
type flowSlot struct {
	hash       string
	at, amount int64
}

func (s flowSlot) encode() string {
	return s.hash + ":" + strconv.FormatInt(s.at, 36) + ":" + strconv.FormatInt(s.amount, 36)
}

func decodeFlowSlot(v string) (flowSlot, bool) {
	h, rest, ok := strings.Cut(v, ":")
	if !ok {
		return flowSlot{}, false
	}
	a, m, ok := strings.Cut(rest, ":")
	if !ok {
		return flowSlot{}, false
	}
	at, err1 := strconv.ParseInt(a, 36, 64)
	amount, err2 := strconv.ParseInt(m, 36, 64)
	if err1 != nil || err2 != nil {
		return flowSlot{}, false
	}
	return flowSlot{hash: h, at: at, amount: amount}, true
}

// flowIndex is the slot of a hash: from its first characters, which
// base64url spreads evenly (6 bits each).
func flowIndex(hash string, slots int) int {
	return (int(b64Value(hash[0]))<<6 | int(b64Value(hash[1]))) % slots
}

func b64Value(c byte) byte {
	switch {
	case c >= 'A' && c <= 'Z':
		return c - 'A'
	case c >= 'a' && c <= 'z':
		return c - 'a' + 26
	case c >= '0' && c <= '9':
		return c - '0' + 52
	case c == '-':
		return 62
	}
	return 63
}

// payeeSlotNames and inflowSlotNames are the attributes of the slots.
var payeeSlotNames, inflowSlotNames = func() (p [recentPayees]string, r [recentInflows]string) {
	for i := range p {
		p[i] = "q" + strconv.Itoa(i)
	}
	for i := range r {
		r[i] = "r" + strconv.Itoa(i)
	}
	return p, r
}()

// Windows of the flow features.
const (
	flowHourS = 3600
	flowDayS  = 86400
	// inflowsHourS is the in-then-out window: money received this recently
	// and sent on.
	inflowsHourS = 3600
)

// payeeFlows counts the distinct payees of the last hour and day, this
// payment's included, and of those in the hour the ones paid at most
// probeMax (this one included when it is).
func (st *walletState) payeeFlows(w write, probeMax int64) (hour, day, probesHour int64) {
	own := flowHash(w.payeeHash)
	for _, s := range st.payeesRecent {
		if s.hash == "" || s.hash == own {
			continue
		}
		age := w.now - s.at
		if age < flowDayS {
			day++
		}
		if age < flowHourS {
			hour++
			if s.amount <= probeMax {
				probesHour++
			}
		}
	}
	if w.payeeHash != "" {
		hour++
		day++
		if w.amount <= probeMax {
			probesHour++
		}
	}
	return hour, day, probesHour
}

func flowHash(h string) string {
	if len(h) > flowHashChars {
		return h[:flowHashChars]
	}
	return h
}

// inflowFlows sums the money received in the window and counts its
// distinct payers (slots), with the time since the latest arrival (-1:
// none remembered).
func (st *walletState) inflowFlows(now, windowS int64) (payers, sum, sinceLast int64) {
	sinceLast = -1
	for _, s := range st.inflows {
		if s.hash == "" {
			continue
		}
		if now-s.at < windowS {
			payers++
			sum += s.amount
		}
	}
	if st.lastIn > 0 {
		sinceLast = max(now-st.lastIn, 0)
	}
	return payers, sum, sinceLast
}

// Inflow is money arriving in a wallet: from a transfer it receives, or
// (offline only) a cash-in.
type Inflow struct {
	Wallet, Currency string
	From             string // the payer's wallet, or the cash-in agent
	Amount           int64
	At               int64 // unix seconds
}

func (in Inflow) slot() (int, flowSlot) {
	h := shortHash("payer", in.From)[:flowHashChars]
	return flowIndex(h, recentInflows), flowSlot{hash: h, at: in.At, amount: in.Amount}
}

// receive records in on the receiver's state (as the receiver's
// UpdateItem does in DynamoDB).
func (st *walletState) receive(in Inflow) {
	st.exists = true
	i, s := in.slot()
	st.inflows[i] = s
	if st.firstIn == 0 {
		st.firstIn = in.At
	}
	st.lastIn = in.At
}

// Receiver is what the receiving wallet's item knew before a transfer to
// it, plus the transfer.
type Receiver struct {
	Known bool // the receiver's item was read (transfers only)
	// Payers1d and In1d: distinct payers and money in over the last day,
	// this transfer included.
	Payers1d, In1d int64
	// AgeS is the time since the receiver first received money or paid;
	// 0 for a receiver never seen.
	AgeS int64
	// Payments is how many payments the receiver made itself.
	Payments int64
}

// receiverOf computes Receiver from the receiver's old state and in.
func (st *walletState) receiverOf(in Inflow) Receiver {
	r := Receiver{Known: true}
	_, own := in.slot()
	for _, s := range st.inflows {
		if s.hash == "" || s.hash == own.hash {
			continue
		}
		if in.At-s.at < flowDayS {
			r.Payers1d++
			r.In1d += s.amount
		}
	}
	r.Payers1d++
	r.In1d += in.Amount
	first := st.firstIn
	if st.firstAt > 0 && (first == 0 || st.firstAt < first) {
		first = st.firstAt
	}
	if first > 0 {
		r.AgeS = max(in.At-first, 0)
	}
	r.Payments = st.histCount
	return r
}

// probeMinor is a probe-sized amount (about USD 2) in each currency's minor
// units: what a card tester pays to see whether a card works.
var probeMinor = map[string]int64{
	"IDR": 32_000, "PHP": 11_400, "MYR": 900, "THB": 7_000, "BDT": 24_000, "PKR": 560, "INR": 16_800,
}

// inflowOf is the inflow a payment makes on its receiver, and whether it
// makes one: transfers between wallets only (see above).
func inflowOf(p Payment) (Inflow, bool) {
	if p.Type != TypeTransfer || p.Payee == "" || p.Payee == p.Wallet {
		return Inflow{}, false
	}
	return Inflow{Wallet: p.Payee, Currency: p.Currency, From: p.Wallet, Amount: p.Amount, At: p.At.Unix()}, true
}
