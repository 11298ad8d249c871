package fraud

import (
	"context"
	"sync"
	"sync/atomic"
)

// Store records a payment in the wallet's velocity counters and returns what
// it knew before (plus this payment), in one step. wantBalance asks for the
// payer's balance too (the rules set when: t.balance_check_min).
type Store interface {
	Observe(ctx context.Context, p Payment, wantBalance bool) (Observed, error)
}

// MemoryStore is the feature store of the OFFLINE evaluation (`sebelas fraud
// eval`) only: it keeps the counters in process memory with the same
// semantics as DynamoStore (the same walletState logic, checked against
// DynamoDB Local by the DynamoDB store's tests), and counts the DynamoDB round
// trips the same sequence would have cost. It is not a production store: it
// forgets everything on restart and every function instance would see only
// its share of the traffic.
type MemoryStore struct {
	// Balance, when set, answers balance reads (the evaluation knows the
	// synthetic wallets' balances).
	Balance func(wallet, currency string) (int64, bool)

	mu      sync.Mutex
	wallets map[string]*walletState
	devices map[string]*deviceState

	roundTrips, observed                      atomic.Int64
	secondWrites, deviceLookups, balanceReads atomic.Int64
	receiverWrites                            atomic.Int64
}

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{wallets: map[string]*walletState{}, devices: map[string]*deviceState{}}
}

// RoundTrips returns the DynamoDB round trips DynamoStore would have made for
// the payments observed so far, and their number.
func (m *MemoryStore) RoundTrips() (roundTrips, payments int64) {
	return m.roundTrips.Load(), m.observed.Load()
}

// Calls breaks RoundTrips down: second counter writes (refused blind
// writes), device-item updates and balance reads.
func (m *MemoryStore) Calls() (secondWrites, deviceLookups, balanceReads int64) {
	return m.secondWrites.Load(), m.deviceLookups.Load(), m.balanceReads.Load()
}

// ReceiverWrites is the receivers' inflow updates among RoundTrips
// (transfers between wallets, in parallel with the payer's update).
func (m *MemoryStore) ReceiverWrites() int64 { return m.receiverWrites.Load() }

// CashIn records money into a wallet from outside (the offline evaluation's
// cash-in rows): the wallet's recent inflows, as a transfer to it would.
func (m *MemoryStore) CashIn(in Inflow) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.state(walletPK(in.Wallet, in.Currency)).receive(in)
}

func (m *MemoryStore) state(key string) *walletState {
	st := m.wallets[key]
	if st == nil {
		st = &walletState{}
		m.wallets[key] = st
	}
	return st
}

// Observe implements Store.
func (m *MemoryStore) Observe(ctx context.Context, p Payment, wantBalance bool) (Observed, error) {
	w := newWrite(p)
	m.mu.Lock()
	st := m.state(walletPK(p.Wallet, p.Currency))
	trips := int64(1)
	ok, dup := st.check(w)
	o := st.observe(w, dup)
	switch {
	case dup:
	case ok:
		st.apply(w, blindPlan(w))
	default:
		trips++ // the planned second write
		m.secondWrites.Add(1)
		st.apply(w, st.planFor(w))
	}
	if youngWallet(o) && w.deviceHash != "" {
		trips++
		m.deviceLookups.Add(1)
		o.DeviceWallets = m.deviceWallets(w, shortHash("wallet", p.Wallet))
	}
	if in, ok := inflowOf(p); ok {
		// DynamoStore writes it in parallel with the payer's update.
		trips++
		m.receiverWrites.Add(1)
		r := m.state(walletPK(in.Wallet, in.Currency))
		o.Receiver = r.receiverOf(in)
		r.receive(in)
	}
	m.mu.Unlock()
	if wantBalance {
		// DynamoStore reads it in parallel with the counters update: a
		// call, not extra latency.
		trips++
		m.balanceReads.Add(1)
		if m.Balance != nil {
			o.Balance, o.BalanceKnown = m.Balance(p.Wallet, p.Currency)
		}
	}
	m.roundTrips.Add(trips)
	m.observed.Add(1)
	return o, nil
}

// youngWalletSeconds is how long after its first payment a wallet's
// payments consult its device's item: a coupon farm's wallets pay once or
// twice within minutes of their creation.
const youngWalletSeconds = 3600

func youngWallet(o Observed) bool {
	return !o.Redelivery && (o.NewWallet || o.WalletAgeSeconds < youngWalletSeconds)
}

func (m *MemoryStore) deviceWallets(w write, walletHash string) int64 {
	d := m.devices[w.deviceHash]
	if d == nil || d.expiresAt < w.now {
		d = &deviceState{wallets: map[string]bool{}}
		m.devices[w.deviceHash] = d
	}
	if len(d.wallets) < deviceWalletsMax {
		d.wallets[walletHash] = true
	}
	d.expiresAt = w.now + int64(deviceTTL.Seconds())
	return int64(len(d.wallets))
}
