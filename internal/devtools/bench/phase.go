package bench

import (
	"context"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sebelas/sebelas/internal/devtools/burst"
)

// sample is one operation of a phase.
type sample struct {
	end    time.Duration // since the phase (all its rounds) started
	lat    time.Duration
	market int
	ok     bool
	// stage is the full path's time to fraud's reply (0 in the raw
	// ceiling): where the time goes.
	stage time.Duration
	// outcome says how the charge ended: "succeeded", "declined: <reason>",
	// "held for review", "timeout", "error: ...".
	outcome string
}

// op runs one operation of a phase and says how the charge ended
// (outcomeSucceeded for a successful charge); stage is the time to the
// first stage's end (full path only).
type op func(ctx context.Context, ev burst.Event) (outcome string, stage time.Duration)

// Outcomes of an operation.
const (
	outcomeSucceeded = "succeeded"
	outcomeHeld      = "held for review"
	outcomeTimeout   = "no outcome within the timeout"
)

// events hands out the events of a plan to concurrent workers, in order.
type eventSource struct {
	mu sync.Mutex
	g  *burst.Generator
}

func (s *eventSource) next() (burst.Event, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.g.Next()
}

// closedLoop runs concurrency workers, each doing one operation after the
// other, for d; offset is added to every sample's end (rounds follow each
// other on the phase's time axis).
func closedLoop(ctx context.Context, concurrency int, d, offset time.Duration, src *eventSource, do op) []sample {
	start := time.Now()
	deadline := start.Add(d)
	var mu sync.Mutex
	var out []sample
	var wg sync.WaitGroup
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []sample
			for time.Now().Before(deadline) && ctx.Err() == nil {
				ev, more := src.next()
				if !more {
					break
				}
				t0 := time.Now()
				outcome, stage := do(ctx, ev)
				t1 := time.Now()
				mine = append(mine, sample{end: offset + t1.Sub(start), lat: t1.Sub(t0), market: ev.Market,
					ok: outcome == outcomeSucceeded, stage: stage, outcome: outcome})
			}
			mu.Lock()
			out = append(out, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Slice(out, func(i, j int) bool { return out[i].end < out[j].end })
	return out
}

// Latency is a latency summary.
type Latency struct {
	P50, P99, P999, Max time.Duration
}

// percentile is the nearest-rank percentile of sorted durations.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func summarize(lats []time.Duration) Latency {
	s := append([]time.Duration(nil), lats...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s) == 0 {
		return Latency{}
	}
	return Latency{P50: percentile(s, 0.50), P99: percentile(s, 0.99), P999: percentile(s, 0.999), Max: s[len(s)-1]}
}

// Bucket is one second of a phase.
type Bucket struct {
	Second   int
	OK       int     // successful operations that ended in this second
	ByMarket []int   // the same, per market
	Latency  Latency // of the operations that ended in this second
	// MarketP50 is the median latency per market in this second (0 when
	// none ended).
	MarketP50 []time.Duration
}

func series(samples []sample, markets int) []Bucket {
	if len(samples) == 0 {
		return nil
	}
	n := int(samples[len(samples)-1].end/time.Second) + 1
	out := make([]Bucket, n)
	lats := make([][]time.Duration, n)
	mlats := make([][][]time.Duration, n)
	for i := range out {
		out[i] = Bucket{Second: i, ByMarket: make([]int, markets), MarketP50: make([]time.Duration, markets)}
		mlats[i] = make([][]time.Duration, markets)
	}
	for _, s := range samples {
		b := int(s.end / time.Second)
		if !s.ok {
			continue
		}
		out[b].OK++
		out[b].ByMarket[s.market]++
		lats[b] = append(lats[b], s.lat)
		mlats[b][s.market] = append(mlats[b][s.market], s.lat)
	}
	for i := range out {
		out[i].Latency = summarize(lats[i])
		for m := range markets {
			out[i].MarketP50[m] = summarize(mlats[i][m]).P50
		}
	}
	return out
}

// cpuSelf is the process's user+system CPU time so far.
func cpuSelf() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// clockTicks is Linux's USER_HZ, the unit of /proc/<pid>/stat times; it
// is 100 on every mainstream architecture.
const clockTicks = 100

// cpuOf is another process's user+system CPU time (Linux), 0 if unknown.
func cpuOf(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name is in parentheses and may hold spaces; fields
	// count from after it. utime and stime are fields 14 and 15.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	k, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(u+k) * time.Second / clockTicks
}

// loadavg is the machine's 1, 5 and 15 minute load averages (Linux).
func loadavg() [3]float64 {
	var out [3]float64
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return out
	}
	f := strings.Fields(string(b))
	for i := 0; i < 3 && i < len(f); i++ {
		out[i], _ = strconv.ParseFloat(f[i], 64)
	}
	return out
}
