package bench

import (
	"sort"
	"strings"

	"github.com/sebelas/sebelas/internal/devtools/burst"
)

// PartitionWritesMax is DynamoDB's documented ceiling for one partition:
// 1,000 write units a second (a write of up to 1 KB is one unit).
const PartitionWritesMax = 1000

// keysShown bounds the keys a report lists per phase.
const keysShown = 12

// KeyStat is one partition key's writes in a phase and their projection at
// the profile's real-world volume.
type KeyStat struct {
	Key    string
	Index  bool   // a partition of the GSI, not of the table
	Class  string // what the key is (keyClass)
	Market string // "" when the key does not say
	Writes int64
	// PeakPerSec is the busiest second's writes, MeanPerSec the phase's
	// average.
	PeakPerSec int64
	MeanPerSec float64
	// Projected is the key's write rate at the market's real-world
	// midnight peak at the profile's multiplier; ProjectedMax at
	// burst.PeakMultiplierMax. Basis says how.
	Projected, ProjectedMax float64
	Basis                   string
}

// Key classes, from the key's prefix (the ledger's and fraud's layouts as
// DESIGN.md names them).
const (
	classCharge       = "charge item"
	classBalance      = "payer balance"
	classUnsettledGSI = "unsettled index shard (GSI)"
	classVelocity     = "velocity counter"
	classDevice       = "device counter"
	classOther        = "other"
)

func keyClass(key string, index bool) string {
	switch {
	case index && strings.HasPrefix(key, "UN#"):
		return classUnsettledGSI
	case strings.HasPrefix(key, "C#"):
		return classCharge
	case strings.HasPrefix(key, "W#"):
		return classBalance
	case strings.HasPrefix(key, "VD#"):
		return classDevice
	case strings.HasPrefix(key, "V#"):
		return classVelocity
	}
	return classOther
}

// keyMarket finds the market a key belongs to from the ids in it.
func keyMarket(key string, p burst.Profile) string {
	parts := strings.Split(key, "#")
	for _, part := range parts[1:] {
		if m := burst.MarketOfID(part); m != "" {
			return m
		}
		if p.MarketIndex(part) >= 0 {
			return part
		}
	}
	return ""
}

// projectKeys fills both phases' Keys: the busiest keys by their busiest
// second, and the busiest of every class, with projections.
func (r *Result) projectKeys(raw, path *phaseDDB) {
	r.Raw.Keys = r.keyStats(raw, &r.Raw)
	r.Path.Keys = r.keyStats(path, &r.Path)
}

func (r *Result) keyStats(d *phaseDDB, ph *Phase) []KeyStat {
	p := r.Options.Profile
	charges := map[string]float64{} // local successful charges per market
	for _, m := range ph.ByMarket {
		charges[m.Code] = float64(m.OK)
	}
	// Mean writes per payer key in each market: a payer's skew over its
	// market's average payer, carried to the real population.
	payerWrites, payerKeys := map[string]float64{}, map[string]float64{}
	all := make([]KeyStat, 0, len(d.keys))
	for k, kw := range d.keys {
		ks := KeyStat{Key: k, Index: kw.index, Class: keyClass(k, kw.index), Market: keyMarket(k, p), Writes: kw.total}
		for _, n := range kw.perSec {
			ks.PeakPerSec = max(ks.PeakPerSec, n)
		}
		if ph.Elapsed > 0 {
			ks.MeanPerSec = float64(kw.total) / ph.Elapsed.Seconds()
		}
		if ks.Class == classBalance || ks.Class == classVelocity || ks.Class == classDevice {
			payerWrites[ks.Class+ks.Market] += float64(kw.total)
			payerKeys[ks.Class+ks.Market]++
		}
		all = append(all, ks)
	}
	var chargeSim *FunctionSim
	for i := range r.Autoscale {
		if r.Autoscale[i].Name == "charge" {
			chargeSim = &r.Autoscale[i]
		}
	}
	for i := range all {
		r.project(&all[i], charges, payerWrites, payerKeys, chargeSim)
	}
	ph.IndexShards = indexShards(all, p, charges)
	sort.Slice(all, func(i, j int) bool {
		if all[i].PeakPerSec != all[j].PeakPerSec {
			return all[i].PeakPerSec > all[j].PeakPerSec
		}
		if all[i].Writes != all[j].Writes {
			return all[i].Writes > all[j].Writes
		}
		return all[i].Key < all[j].Key
	})
	var out []KeyStat
	shown := map[string]bool{}
	for _, ks := range all {
		if len(out) < keysShown {
			out = append(out, ks)
			shown[ks.Class] = true
		}
	}
	// The busiest key of every class by its projection, so that a hot key
	// of a rare class cannot hide behind many busy ones.
	best := map[string]KeyStat{}
	for _, ks := range all {
		if b, ok := best[ks.Class]; !ok || ks.ProjectedMax > b.ProjectedMax {
			best[ks.Class] = ks
		}
	}
	var classes []string
	for c := range best {
		classes = append(classes, c)
	}
	sort.Strings(classes)
	for _, c := range classes {
		b := best[c]
		dup := false
		for _, o := range out {
			if o.Key == b.Key && o.Index == b.Index {
				dup = true
			}
		}
		if !dup {
			out = append(out, b)
		}
	}
	return out
}

// project estimates the key's write rate at the real-world peak of its
// market, at the profile's multiplier and at the largest one.
func (r *Result) project(ks *KeyStat, charges, payerWrites, payerKeys map[string]float64, chargeSim *FunctionSim) {
	p := r.Options.Profile
	i := p.MarketIndex(ks.Market)
	realCharges := func(mult float64) float64 {
		if i < 0 {
			// Unknown market: every market's peak together, an upper bound.
			sum := 0.0
			for j := range p.Markets {
				sum += p.KindPeakRate(j, burst.KindCharge) / p.Markets[j].Multiplier * mult
			}
			return sum
		}
		return p.KindPeakRate(i, burst.KindCharge) / p.Markets[i].Multiplier * mult
	}
	both := func(f func(mult float64) float64) {
		if i >= 0 {
			ks.Projected = f(p.Markets[i].Multiplier)
		} else {
			ks.Projected = f(burst.PeakMultiplierDefault)
		}
		ks.ProjectedMax = f(burst.PeakMultiplierMax)
	}
	local := charges[ks.Market]
	if i < 0 {
		local = 0
		for _, n := range charges {
			local += n
		}
	}
	switch ks.Class {
	case classCharge:
		// A charge id is written once (a retry or a replay at most once
		// more): never hot, whatever the volume.
		ks.Projected, ks.ProjectedMax = float64(ks.PeakPerSec), float64(ks.PeakPerSec)
		ks.Basis = "written once per charge id: does not grow with volume"
	case classBalance, classVelocity, classDevice:
		// One payer (or their one phone): the market's charges spread over
		// its real payers, times this key's skew over the local average
		// key of its class. A device key does not name its market: all
		// markets' charges over all payers.
		skew := 1.0
		if n := payerKeys[ks.Class+ks.Market]; n > 0 && payerWrites[ks.Class+ks.Market] > 0 {
			skew = float64(ks.Writes) / (payerWrites[ks.Class+ks.Market] / n)
		}
		active := 0.0
		if i >= 0 {
			active = p.Markets[i].ActivePayers
		} else {
			for _, m := range p.Markets {
				active += m.ActivePayers
			}
		}
		both(func(mult float64) float64 { return realCharges(mult) / active * skew })
		ks.Basis = "charges / active payers x this key's skew over the local average one"
	default:
		// A share of the market's charges, carried to the real volume.
		if local > 0 {
			share := float64(ks.Writes) / local
			both(func(mult float64) float64 { return share * realCharges(mult) })
		}
		ks.Basis = "share of the market's local charges x the market's real charges/s at midnight"
	}
}

// IndexShards is one market's unsettled index (ledger.UnsettledShards GSI
// partitions, ledger/unsettled.go): what its busiest shard takes, and what
// one unsharded partition would take.
type IndexShards struct {
	Market string
	Shards int   // shards written
	Writes int64 // index writes, all shards
	// PerCharge is the index writes per local charge.
	PerCharge float64
	// Unsharded and UnshardedMax are the projected writes/s of a single
	// unsharded partition; Busiest and BusiestMax those of its busiest
	// shard.
	Unsharded, UnshardedMax float64
	Busiest, BusiestMax     float64
}

func indexShards(all []KeyStat, p burst.Profile, charges map[string]float64) []IndexShards {
	var out []IndexShards
	for i, m := range p.Markets {
		prefix := "UN#" + m.Code + "#"
		f := IndexShards{Market: m.Code}
		for _, ks := range all {
			if ks.Class != classUnsettledGSI || !strings.HasPrefix(ks.Key, prefix) {
				continue
			}
			f.Shards++
			f.Writes += ks.Writes
			f.Busiest = max(f.Busiest, ks.Projected)
			f.BusiestMax = max(f.BusiestMax, ks.ProjectedMax)
		}
		if f.Shards == 0 || charges[m.Code] == 0 {
			continue
		}
		f.PerCharge = float64(f.Writes) / charges[m.Code]
		rate := p.KindPeakRate(i, burst.KindCharge)
		f.Unsharded = f.PerCharge * rate
		f.UnshardedMax = f.PerCharge * rate / p.Markets[i].Multiplier * burst.PeakMultiplierMax
		out = append(out, f)
	}
	return out
}
