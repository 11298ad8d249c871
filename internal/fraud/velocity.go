package fraud

import (
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"time"
)

// The velocity counters of one wallet in one currency live in ONE item,
// V#<wallet>#<currency> / V, written by ONE UpdateItem per screened payment
// that also returns the item as it was before (ReturnValues ALL_OLD): the
// features are the old image plus this payment, computed here. The same
// logic drives the in-memory store of the offline evaluation, so both count
// alike (the DynamoDB store's tests compare them).
//
// Windows. Each of the three windows is a ring of time buckets:
//
//	1 minute: 6 buckets of 10 s     1 hour: 12 of 5 min     1 day: 12 of 2 h
//
// A window is the current bucket and the ones before it (so "1 minute" is
// the last 50 to 60 s). Ring r has slots attributes (m0..m60, h0..h60,
// d0..d30), one per slot; bucket b lives in slot b mod slots. A slot's value
// packs the bucket's count and sum into one number, sum*packBase + count, so
// one atomic ADD updates both (DynamoDB numbers have 38 digits).
//
// A slot's data belongs to exactly one bucket, known from `la` (the time of
// the previous payment, in the item): every write REMOVEs every slot outside
// the window, so slot s holds data of the one bucket b ≡ s (mod slots) in
// (la's bucket - slots, la's bucket]. Reading needs no per-slot timestamps,
// and the item holds at most 6+12+12 slots however long the wallet lives.
//
// The one case the blind ADD would get wrong is a slot still holding data of
// a bucket a multiple of `slots` before the current one: after a gap of a
// multiple of 610 s, 305 min or 62 h. The write's condition refuses exactly
// that case (own slot present and `la` older than the current bucket), and
// then a second UpdateItem, planned from the old image the failure returns,
// overwrites the slot instead of adding to it. That costs a second round trip
// for about 1 in 61 (1 in 31 for the day ring) payments that follow a gap
// longer than the ring's window, and never within a burst: about 4% of the
// payments of wallets that pay a few times a day. More slots make it rarer
// and the REMOVE list longer. The slot counts are prime on purpose: with 64
// slots of 10 s, a payment at the same time every day (86,400 s = 135 x 640
// s) would collide every time.
//
// Redelivery: the item keeps the hashes of the last recentEvents CloudEvents
// (slot by hash); the condition refuses an event already there, and the
// failure's old image gives the features without counting it again. A
// redelivery after recentEvents other events of the same wallet whose hash
// fell in the same slot (1/8 chance each) is counted twice: velocity then
// over-counts by one, which errs towards review, never towards money.

// ring is one time window of the counters.
type ring struct {
	prefix string // attribute name prefix
	widthS int64  // bucket width, seconds
	live   int64  // buckets in the window, the current one included
	slots  int64  // slots of the ring; see above for the trade-off
}

const (
	ringsCount = 3
	// slotsMax is the largest ring.
	slotsMax = 61
)

var rings = [ringsCount]ring{
	{prefix: "m", widthS: 10, live: 6, slots: 61},    // 1 minute
	{prefix: "h", widthS: 300, live: 12, slots: 61},  // 1 hour
	{prefix: "d", widthS: 7200, live: 12, slots: 31}, // 1 day
}

// slotNames[r][s] is the attribute name of slot s of ring r.
var slotNames = func() (n [ringsCount][]string) {
	for r, rg := range rings {
		if rg.slots > slotsMax || rg.slots < 2*rg.live {
			panic("fraud: ring " + rg.prefix + " has too few or too many slots")
		}
		for s := range rg.slots {
			n[r] = append(n[r], rg.prefix+strconv.Itoa(int(s)))
		}
	}
	return n
}()

// Packing: a slot's value is sum*packBase + count.
const (
	packBase = 1_000_000_000
	// slotCountMax is the most payments one bucket can count before the
	// count would carry into the sum: a billion payments of one wallet in
	// two hours is not a payment pattern; a wallet at it is denied long
	// before (rules on count_1m).
	slotCountMax = packBase - 1
)

// Bounds of the item, which is written on every payment: its size is the
// write's cost (1 WCU per KB).
const (
	// recentEvents is the redelivery memory, in event hashes.
	recentEvents = 8
	// devicesMax bounds the wallet's device set; a wallet used from more
	// devices in a month is a pattern in itself (`devices` saturates).
	devicesMax = 16
	// payeesMax bounds the wallet's merchant and phone-number set. Beyond it
	// new payees are not remembered, so they stay "new" (more reviews for a
	// very busy wallet, never fewer).
	payeesMax = 64
	// deviceWalletsMax bounds the new wallets remembered per device.
	deviceWalletsMax = 64
	// hashBytes of SHA-256 name a device, payee or event in the item (8
	// characters of base64url): collisions within one wallet's sets are
	// negligible, and phone numbers are never stored in the clear.
	hashBytes = 6
	// walletTTL keeps a wallet's history this long after its last payment
	// (expires_at, the table's TTL attribute).
	walletTTL = 30 * 24 * time.Hour
	// deviceTTL is the coupon-farm window: new wallets on one device are
	// counted until the device has been quiet this long.
	deviceTTL = 24 * time.Hour
)

// slot is one bucket's count and sum.
type slot struct{ count, sum int64 }

// walletState is the counters item of one wallet and currency, decoded.
type walletState struct {
	exists             bool
	lastAt, firstAt    int64 // unix seconds; `la`, `fs`
	histCount, histSum int64 // `hn`, `hs`: payments remembered
	slots              [ringsCount][slotsMax]slot
	present            [ringsCount][slotsMax]bool
	devices, payees    map[string]bool // hashes; `dv`, `py`
	recent             [recentEvents]string
	lastCountry        string // `lc`
	// newDevice is the device most recently added to a wallet that already
	// had one, and when: `nd`, `nt`. A takeover's whole session runs on it.
	newDevice   string
	newDeviceAt int64
	// Money flows (flows.go): recent payees `q*`, recent inflows `r*`, the
	// first and last inflow `fi`, `li`.
	payeesRecent    [recentPayees]flowSlot
	inflows         [recentInflows]flowSlot
	firstIn, lastIn int64
}

// write is one payment as the counters item records it.
type write struct {
	now        int64 // unix seconds
	amount     int64
	eventHash  string
	recentSlot int
	deviceHash string // "" when no device
	payeeHash  string // "" when no payee
	country    string
	probeMax   int64 // probe-sized amounts are at most this (flows.go)
}

func shortHash(kind, value string) string {
	sum := sha256.Sum256([]byte(kind + "\x00" + value))
	return base64.RawURLEncoding.EncodeToString(sum[:hashBytes])
}

func newWrite(p Payment) write {
	w := write{now: p.At.Unix(), amount: p.Amount, eventHash: shortHash("event", p.EventKey), country: p.DeviceCountry,
		probeMax: probeMinor[p.Currency]}
	w.recentSlot = int(w.eventHash[0]) % recentEvents
	if p.DeviceID != "" {
		w.deviceHash = shortHash("device", p.DeviceID)
	}
	if p.Payee != "" {
		w.payeeHash = shortHash(p.Kind, p.Payee)
	}
	return w
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

func (r ring) bucket(unix int64) int64 { return floorDiv(unix, r.widthS) }

func (r ring) slotOf(bucket int64) int { return int(mod(bucket, r.slots)) }

// dataBucket is the bucket whose data slot s holds when the last write was in
// bucket last: the one b ≡ s (mod slots) in (last-slots, last].
func (r ring) dataBucket(s int, last int64) int64 { return last - mod(last-int64(s), r.slots) }

// liveAt reports whether slot s is one of the window's slots at bucket cur.
func (r ring) liveAt(s int, cur int64) bool { return mod(cur-int64(s), r.slots) < r.live }

// staleOwnSlot reports, for ring r, whether the slot w adds to holds data of
// an older bucket: the case the blind ADD must not touch.
func (st *walletState) staleOwnSlot(r int, w write) bool {
	cur := rings[r].bucket(w.now)
	return st.present[r][rings[r].slotOf(cur)] && rings[r].bucket(st.lastAt) < cur
}

func full(set map[string]bool, max int, h string) bool {
	return h != "" && len(set) >= max && !set[h]
}

// check mirrors the condition of the first, blind write: dup when the event
// was recorded before, ok when the blind write is right for this item.
func (st *walletState) check(w write) (ok, dup bool) {
	if st.recent[w.recentSlot] == w.eventHash {
		return false, true
	}
	for r := range rings {
		if st.staleOwnSlot(r, w) {
			return false, false
		}
	}
	// A device the wallet has not used before is recorded by the planned
	// write, which also notes when (`nd`, `nt`): a second round trip for a
	// wallet's first payment from a new phone only.
	if st.isNewDevice(w) || full(st.payees, payeesMax, w.payeeHash) {
		return false, false
	}
	return true, false
}

// isNewDevice: w names a device and the wallet, which has used others, has
// not used this one. A wallet's first device is not "new".
func (st *walletState) isNewDevice(w write) bool {
	return w.deviceHash != "" && len(st.devices) > 0 && !st.devices[w.deviceHash]
}

// plan says how the write treats an item that failed the blind condition.
type plan struct {
	overwrite           [ringsCount]bool // SET the own slot instead of ADD
	addDevice, addPayee bool
	newDevice           bool // note w's device as the wallet's newest
}

func blindPlan(w write) plan {
	return plan{addDevice: w.deviceHash != "", addPayee: w.payeeHash != ""}
}

func (st *walletState) planFor(w write) plan {
	var p plan
	for r := range rings {
		p.overwrite[r] = st.staleOwnSlot(r, w)
	}
	p.addDevice = w.deviceHash != "" && !full(st.devices, devicesMax, w.deviceHash)
	p.addPayee = w.payeeHash != "" && !full(st.payees, payeesMax, w.payeeHash)
	p.newDevice = st.isNewDevice(w)
	return p
}

// apply records w in st as the update expression does in DynamoDB.
func (st *walletState) apply(w write, p plan) {
	for r, rg := range rings {
		cur := rg.bucket(w.now)
		s := rg.slotOf(cur)
		if p.overwrite[r] {
			st.slots[r][s] = slot{}
		}
		st.slots[r][s].count++
		st.slots[r][s].sum += w.amount
		st.present[r][s] = true
		for j := range int(rg.slots) {
			if !rg.liveAt(j, cur) {
				st.slots[r][j], st.present[r][j] = slot{}, false
			}
		}
	}
	st.histCount++
	st.histSum += w.amount
	if st.firstAt == 0 {
		st.firstAt = w.now
	}
	if w.payeeHash != "" {
		st.payeesRecent[flowIndex(w.payeeHash, recentPayees)] = flowSlot{hash: flowHash(w.payeeHash), at: w.now, amount: w.amount}
	}
	st.exists = true
	st.lastAt = w.now
	st.recent[w.recentSlot] = w.eventHash
	if p.addDevice {
		if st.devices == nil {
			st.devices = map[string]bool{}
		}
		st.devices[w.deviceHash] = true
	}
	if p.addPayee {
		if st.payees == nil {
			st.payees = map[string]bool{}
		}
		st.payees[w.payeeHash] = true
	}
	if p.newDevice {
		st.newDevice, st.newDeviceAt = w.deviceHash, w.now
	}
	if w.country != "" {
		st.lastCountry = w.country
	}
}

// observe computes the wallet's features from the item as it was before w
// (old) plus w itself; dup means old already includes w.
func (old *walletState) observe(w write, dup bool) Observed {
	var o Observed
	var counts, sums [ringsCount]int64
	for r, rg := range rings {
		cur := rg.bucket(w.now)
		last := rg.bucket(old.lastAt)
		for s := range int(rg.slots) {
			if !old.present[r][s] {
				continue
			}
			if b := rg.dataBucket(s, last); b > cur-rg.live {
				counts[r] += old.slots[r][s].count
				sums[r] += old.slots[r][s].sum
			}
		}
		if !dup {
			counts[r]++
			sums[r] += w.amount
		}
	}
	o.Count1m, o.Count1h, o.Count1d = counts[0], counts[1], counts[2]
	o.Sum1m, o.Sum1h, o.Sum1d = sums[0], sums[1], sums[2]
	o.HistoryCount, o.HistorySum = old.histCount, old.histSum
	if dup {
		o.Redelivery = true
		o.HistoryCount = max(old.histCount-1, 0)
		o.HistorySum = max(old.histSum-w.amount, 0)
	}
	o.NewWallet = o.HistoryCount == 0
	o.SecondsSinceLast = -1
	if old.exists && !o.NewWallet {
		o.SecondsSinceLast = max(w.now-old.lastAt, 0)
		o.WalletAgeSeconds = max(w.now-old.firstAt, 0)
	}
	o.Devices = int64(len(old.devices))
	if w.deviceHash != "" && !old.devices[w.deviceHash] {
		o.Devices++
	}
	o.NewDevice = !dup && old.isNewDevice(w)
	o.NewDeviceAgeSeconds = -1
	switch {
	case o.NewDevice:
		o.NewDeviceAgeSeconds = 0
	case w.deviceHash != "" && w.deviceHash == old.newDevice:
		o.NewDeviceAgeSeconds = max(w.now-old.newDeviceAt, 0)
	}
	o.NewPayee = w.payeeHash != "" && !old.payees[w.payeeHash] && !dup
	o.CountryChanged = w.country != "" && old.lastCountry != "" && old.lastCountry != w.country
	o.Payees1h, o.Payees1d, o.ProbePayees1h = old.payeeFlows(w, w.probeMax)
	o.InPayers1h, o.In1h, o.SecondsSinceIn = old.inflowFlows(w.now, inflowsHourS)
	return o
}

// deviceState is the coupon-farm item of one device: the new wallets first
// seen on it, forgotten once the device is quiet for deviceTTL.
type deviceState struct {
	wallets   map[string]bool
	expiresAt int64
}
