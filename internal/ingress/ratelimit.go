package ingress

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// EnvRateLimits sets per-marketplace request rates:
// "default=<per s>:<burst>;<marketplace>=<per s>:<burst>;...". Unset, every
// marketplace gets RateDefault. A marketplace over its rate is answered 429
// with Retry-After, before the replay record or the Broker is touched.
const EnvRateLimits = "SEBELAS_INGRESS_RATE_LIMITS"

// Rate limit bounds and the default.
const (
	// rateDefaultPerS and rateDefaultBurst: the design peak is 10,000
	// charges/s across all marketplaces, so one marketplace at 2,000/s with
	// a second's burst is generous and still bounds a stolen key's flood.
	rateDefaultPerS  = 2_000
	rateDefaultBurst = 2_000
	ratePerSMax      = 100_000
	rateBurstMax     = 100_000
	rateTextBytesMax = 64 << 10
)

// Rate is one marketplace's limit.
type Rate struct {
	PerS  float64
	Burst int
}

// RateLimits are the configured rates; limiters are made per marketplace
// on its first authenticated request (at most marketplacesMax of them, as
// only configured marketplaces authenticate).
type RateLimits struct {
	Default Rate
	Per     map[string]Rate

	mu       sync.Mutex
	limiters map[string]*rate.Limiter
}

// ParseRateLimits reads EnvRateLimits' format; "" is the default for all.
func ParseRateLimits(text string) (*RateLimits, error) {
	rl := &RateLimits{Default: Rate{PerS: rateDefaultPerS, Burst: rateDefaultBurst}, Per: map[string]Rate{}}
	if len(text) > rateTextBytesMax {
		return nil, fmt.Errorf("%s is %d bytes, at most %d", EnvRateLimits, len(text), rateTextBytesMax)
	}
	for _, entry := range strings.Split(text, ";") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		name, spec, ok := strings.Cut(entry, "=")
		perText, burstText, ok2 := strings.Cut(spec, ":")
		if !ok || !ok2 || (name != "default" && !idPattern.MatchString(name)) {
			return nil, fmt.Errorf("%s entry %.80q: want <marketplace or default>=<per s>:<burst>", EnvRateLimits, entry)
		}
		per, err1 := strconv.ParseFloat(perText, 64)
		burst, err2 := strconv.Atoi(burstText)
		if err1 != nil || err2 != nil || !(per > 0 && per <= ratePerSMax) || burst < 1 || burst > rateBurstMax {
			return nil, fmt.Errorf("%s entry %.80q: rate in (0, %d] per s, burst 1..%d", EnvRateLimits, entry, ratePerSMax, rateBurstMax)
		}
		r := Rate{PerS: per, Burst: burst}
		if name == "default" {
			rl.Default = r
			continue
		}
		if _, dup := rl.Per[name]; dup || len(rl.Per) >= marketplacesMax {
			return nil, fmt.Errorf("%s: %s given twice or more than %d marketplaces", EnvRateLimits, name, marketplacesMax)
		}
		rl.Per[name] = r
	}
	return rl, nil
}

// wait says how long marketplace must wait before its request at now would
// be within its rate: 0 means go ahead (a token is taken).
func (rl *RateLimits) wait(marketplace string, now time.Time) time.Duration {
	rl.mu.Lock()
	if rl.limiters == nil {
		rl.limiters = map[string]*rate.Limiter{}
	}
	lim, ok := rl.limiters[marketplace]
	if !ok {
		r, ok := rl.Per[marketplace]
		if !ok {
			r = rl.Default
		}
		lim = rate.NewLimiter(rate.Limit(r.PerS), r.Burst)
		rl.limiters[marketplace] = lim
	}
	rl.mu.Unlock()
	res := lim.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now) // refused requests do not spend the budget
		return d
	}
	return 0
}

// retryAfterS is the Retry-After header value for a wait: whole seconds,
// rounded up, at least 1.
func retryAfterS(d time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}
