package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sebelas/sebelas/internal/devtools/burst"
)

// profileFlags are the festival profile's flags, shared by burst and bench.
type profileFlags struct {
	year       *int
	multiplier *string
	payers     *int
	merchants  *int
	flagship   *float64
	mix        *string
}

func addProfileFlags(fs *flag.FlagSet) profileFlags {
	def := burst.DefaultProfile(2026)
	return profileFlags{
		year:       fs.Int("year", 2026, "year of the 11.11 festival"),
		multiplier: fs.String("multiplier", "", fmt.Sprintf("festival-day volume over a normal day: one number for every market, or per market, e.g. ID=80,PH=38 (default %d everywhere, at most %d)", burst.PeakMultiplierDefault, burst.PeakMultiplierMax)),
		payers:     fs.Int("payers", def.Payers, "generated payers of the busiest market, the others in proportion; they take turns, so each pays every payers/rate seconds (fraud holds a payer paying 5 times a minute)"),
		merchants:  fs.Int("merchants", def.Merchants, "generated merchants per market (Zipf-skewed, rank 1 is the flagship)"),
		flagship:   fs.Float64("flagship", def.FlagshipMidnight, "the flagship store's share of a market's charges at its midnight"),
		mix:        fs.String("mix", "", "share of each kind, e.g. charge=0.85,refund=0.03,topup=0.12 (the default)"),
	}
}

func (f profileFlags) profile() (burst.Profile, error) {
	p := burst.DefaultProfile(*f.year)
	p.Payers, p.Merchants, p.FlagshipMidnight = *f.payers, *f.merchants, *f.flagship
	if all, err := strconv.ParseFloat(*f.multiplier, 64); err == nil {
		for i := range p.Markets {
			p.Markets[i].Multiplier = all
		}
	} else if *f.multiplier != "" {
		for _, kv := range strings.Split(*f.multiplier, ",") {
			code, v, ok := strings.Cut(kv, "=")
			x, err := strconv.ParseFloat(v, 64)
			i := p.MarketIndex(code)
			if !ok || err != nil || i < 0 {
				return p, fmt.Errorf("--multiplier %q: want MARKET=NUMBER with MARKET one of ID PH MY TH BD PK IN", kv)
			}
			p.Markets[i].Multiplier = x
		}
	}
	if *f.mix != "" {
		var mix burst.Mix
		for _, kv := range strings.Split(*f.mix, ",") {
			name, v, ok := strings.Cut(kv, "=")
			x, err := strconv.ParseFloat(v, 64)
			found := false
			for _, k := range burst.Kinds() {
				if k.String() == name {
					mix[k], found = x, true
				}
			}
			if !ok || err != nil || !found {
				return p, fmt.Errorf("--mix %q: want KIND=SHARE with KIND one of charge refund topup", kv)
			}
		}
		p.Mix = mix
	}
	return p, p.Validate()
}

// parseClock reads "HH:MM" as a UTC time on the eve of the festival (the
// midnights of all seven markets fall on 10 November UTC).
func parseClock(s string, p burst.Profile) (time.Time, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: want HH:MM (UTC)", s)
	}
	eve := p.Day.AddDate(0, 0, -1)
	return time.Date(eve.Year(), eve.Month(), eve.Day(), t.Hour(), t.Minute(), 0, 0, time.UTC), nil
}

func runBurst(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("burst", "--url BROKER_URL [--max-requests 10000] [--duration 60s] [--peak-rps 200] [--compression 60] [--seed 1] [--run ID] [--fund] ...")
	target := fs.String("url", "", "the Broker ingress to send to (required; nothing else is contacted, redirects are not followed), e.g. http://127.0.0.1:8080 from `sebelas dev`")
	maxRequests := fs.Int64("max-requests", 10_000, fmt.Sprintf("stop after this many requests (at most %d)", burst.RequestsMax))
	duration := fs.Duration("duration", time.Minute, fmt.Sprintf("stop after this long (at most %v)", burst.DurationMax))
	peak := fs.Float64("peak-rps", 200, "requests per second sent at the busiest instant of the window; the rest of the profile is scaled alike")
	compression := fs.Float64("compression", 60, "festival seconds per wall second (60: the 4.5 h of midnights in 4.5 min)")
	from := fs.String("from", "", "start of the festival window, HH:MM UTC on 10 November (default: 30 min before the first midnight, 15:30)")
	to := fs.String("to", "", "end of the window, HH:MM UTC (default: an hour after the last midnight, 20:00)")
	seed := fs.Uint64("seed", 1, "seed: the same seed and flags send the same events")
	run := fs.String("run", "", "prefix of every business id (default: burst-<seed>-<time>); the same run and seed again is a replay of duplicates")
	inFlight := fs.Int("in-flight", 64, fmt.Sprintf("concurrent requests at most (1..%d)", burst.InFlightMaxLimit))
	fund := fs.Bool("fund", false, "first credit every generated payer through the table of AWS_ENDPOINT_URL_DYNAMODB / SEBELAS_TABLE (idempotent); the only step that talks to anything but --url")
	quiet := fs.Bool("quiet", false, "no progress lines")
	pf := addProfileFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *target == "" {
		fs.Usage()
		return errors.New("--url is required")
	}
	p, err := pf.profile()
	if err != nil {
		return err
	}
	pl := burst.Plan{Profile: p, Compression: *compression, PeakPerSec: *peak, Seed: *seed}
	pl.From, pl.To = p.DefaultWindow()
	if *from != "" {
		if pl.From, err = parseClock(*from, p); err != nil {
			return fmt.Errorf("--from %w", err)
		}
	}
	if *to != "" {
		if pl.To, err = parseClock(*to, p); err != nil {
			return fmt.Errorf("--to %w", err)
		}
	}
	g, err := burst.NewGenerator(pl)
	if err != nil {
		return err
	}
	if *run == "" {
		*run = fmt.Sprintf("burst-%d-%s", *seed, time.Now().UTC().Format("150405"))
	}
	if *fund {
		l, tc, err := openLedger(ctx)
		if err != nil {
			return err
		}
		total := 0
		for i := range p.Markets {
			total += p.PayersIn(i)
		}
		fmt.Fprintf(stdout, "funding %d payers in %d markets in table %s\n", total, len(p.Markets), tc.Table)
		if err := burst.FundPayers(ctx, l, p, 32); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "burst %s -> %s: festival %s..%s UTC at %gx (%v of wall time), %.0f req/s at the peak (%.5f of the real volume), at most %d requests and %v\n",
		*run, *target, pl.From.Format("15:04"), pl.To.Format("15:04"), pl.Compression, pl.WallDuration().Round(time.Second),
		*peak, pl.Scale(), *maxRequests, *duration)
	for i, m := range p.Markets {
		fmt.Fprintf(stdout, "  %s midnight %s UTC, x%g, peak %.0f real events/s\n", m.Code, p.Midnight(i).Format("15:04"), m.Multiplier, p.PeakRate(i))
	}
	var progress io.Writer = os.Stderr
	if *quiet {
		progress = nil
	}
	st, err := burst.Send(ctx, g, burst.SendOptions{URL: *target, Run: *run, MaxRequests: *maxRequests,
		MaxDuration: *duration, InFlightMax: *inFlight, Progress: progress})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nstopped: %s after %s\nsent %d: accepted %d, rejected %d, failed %d; sending fell behind the plan by %s at most\n",
		st.Stopped, st.Elapsed.Round(time.Millisecond), st.Sent, st.Accepted, st.Rejected, st.Failed, st.LagMax.Round(time.Millisecond))
	var kinds []string
	for _, k := range burst.Kinds() {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, st.ByKind[k]))
	}
	var markets []string
	for i, m := range p.Markets {
		markets = append(markets, fmt.Sprintf("%s %d", m.Code, st.ByMarket[i]))
	}
	var codes []string
	for c, n := range st.Status {
		codes = append(codes, fmt.Sprintf("%d×%d", n, c))
	}
	sort.Strings(codes)
	fmt.Fprintf(stdout, "by kind: %s\nby market: %s\nHTTP status (0 = no answer): %s\n", strings.Join(kinds, ", "), strings.Join(markets, ", "), strings.Join(codes, ", "))
	if st.Failed > 0 {
		return fmt.Errorf("%d requests failed", st.Failed)
	}
	return nil
}
