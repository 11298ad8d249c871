package burst

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// Bounds of one send: a run always ends, by count or by time.
const (
	RequestsMax        = 10_000_000
	DurationMax        = 6 * time.Hour
	InFlightMaxLimit   = 1024
	requestTimeoutMs   = 10_000
	progressIntervalMs = 1000
	// runBytesMax keeps generated ids within the schemas' 64 characters
	// ("<run>-c00000000").
	runBytesMax = 40
)

// SendOptions bound and aim a send.
type SendOptions struct {
	// URL is the Broker ingress; nothing else is ever contacted (redirects
	// are not followed).
	URL string
	// Run prefixes every business id (see CloudEvent).
	Run string
	// MaxRequests and MaxDuration stop the run, whichever comes first.
	MaxRequests int64
	MaxDuration time.Duration
	// InFlightMax bounds concurrent requests. When the system answers too
	// slowly to keep up, sending falls behind the plan (reported as lag)
	// rather than opening ever more connections.
	InFlightMax int
	// Progress receives a line a second; nil for none.
	Progress io.Writer
	// Client sends the requests; nil means one with a per-request timeout
	// that does not follow redirects.
	Client *http.Client
}

// Validate checks the options.
func (o SendOptions) Validate() error {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("burst: target %q is not an http(s) URL", o.URL)
	}
	if o.Run == "" || len(o.Run) > runBytesMax || strings.ContainsAny(o.Run, "#/ ") {
		return fmt.Errorf("burst: run id %q must be 1..%d characters without '#', '/' or spaces", o.Run, runBytesMax)
	}
	if o.MaxRequests < 1 || o.MaxRequests > RequestsMax {
		return fmt.Errorf("burst: max requests %d must be 1..%d", o.MaxRequests, RequestsMax)
	}
	if o.MaxDuration <= 0 || o.MaxDuration > DurationMax {
		return fmt.Errorf("burst: max duration %v must be in (0, %v]", o.MaxDuration, DurationMax)
	}
	if o.InFlightMax < 1 || o.InFlightMax > InFlightMaxLimit {
		return fmt.Errorf("burst: in-flight %d must be 1..%d", o.InFlightMax, InFlightMaxLimit)
	}
	return nil
}

// SendStats is what a send did.
type SendStats struct {
	Sent     int64 // requests made
	Accepted int64 // 2xx
	Rejected int64 // 4xx: the Broker refused the event
	Failed   int64 // 5xx, timeouts, connection errors
	ByKind   [kindsCount]int64
	ByMarket []int64
	Status   map[int]int64 // HTTP status -> count (0: no answer)
	// LagMax is the furthest sending fell behind the plan.
	LagMax  time.Duration
	Elapsed time.Duration
	// Stopped says why the run ended.
	Stopped string
}

// Why a run ended.
const (
	StoppedWindow      = "the festival window is over"
	StoppedMaxRequests = "max requests reached"
	StoppedMaxDuration = "max duration reached"
	StoppedCancelled   = "cancelled"
)

// Send replays g's events against opts.URL at the plan's pace: event e goes
// out at start+e.Wall. It returns when the plan, MaxRequests or MaxDuration
// ends, once the requests in flight are answered.
func Send(ctx context.Context, g *Generator, opts SendOptions) (SendStats, error) {
	if err := opts.Validate(); err != nil {
		return SendStats{}, err
	}
	p := g.pl.Profile
	client := opts.Client
	if client == nil {
		client = &http.Client{
			Timeout: requestTimeoutMs * time.Millisecond,
			// Only the address given: a redirect would send festival
			// traffic somewhere the operator did not name.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Transport: &http.Transport{
				MaxIdleConns: opts.InFlightMax, MaxIdleConnsPerHost: opts.InFlightMax,
				IdleConnTimeout: 30 * time.Second,
			},
		}
	}
	var (
		st       = SendStats{ByMarket: make([]int64, len(p.Markets)), Status: map[int]int64{}}
		mu       sync.Mutex // guards st.Status, st.ByKind, st.ByMarket, st.LagMax
		sent     atomic.Int64
		ok       atomic.Int64
		rejected atomic.Int64
		failed   atomic.Int64
		inflight atomic.Int64
		wg       sync.WaitGroup
		sem      = make(chan struct{}, opts.InFlightMax)
	)
	start := time.Now()
	stopProgress := make(chan struct{})
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		if opts.Progress == nil {
			<-stopProgress
			return
		}
		tick := time.NewTicker(progressIntervalMs * time.Millisecond)
		defer tick.Stop()
		var last int64
		for {
			select {
			case <-stopProgress:
				return
			case <-tick.C:
				n := sent.Load()
				el := time.Since(start)
				mu.Lock()
				lag := st.LagMax
				mu.Unlock()
				fmt.Fprintf(opts.Progress, "[%6.1fs] festival %s UTC | sent %d (%d/s) ok %d rejected %d failed %d | in flight %d | lag max %s\n",
					el.Seconds(), g.pl.FestivalTime(el).Format("15:04:05"), n, n-last, ok.Load(), rejected.Load(), failed.Load(),
					inflight.Load(), lag.Round(time.Millisecond))
				last = n
			}
		}
	}()

	var runErr error
	for {
		if sent.Load() >= opts.MaxRequests {
			st.Stopped = StoppedMaxRequests
			break
		}
		ev, more := g.Next()
		if !more {
			st.Stopped = StoppedWindow
			break
		}
		if ev.Wall >= opts.MaxDuration {
			st.Stopped = StoppedMaxDuration
			break
		}
		if d := time.Until(start.Add(ev.Wall)); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
			case <-t.C:
			}
		}
		if ctx.Err() != nil {
			st.Stopped = StoppedCancelled
			break
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			st.Stopped = StoppedCancelled
		}
		if st.Stopped != "" {
			break
		}
		if time.Since(start) >= opts.MaxDuration {
			<-sem
			st.Stopped = StoppedMaxDuration
			break
		}
		lag := time.Since(start.Add(ev.Wall))
		ce, err := p.CloudEvent(opts.Run, ev, time.Now())
		if err != nil {
			<-sem
			runErr = err // a generator bug: stop rather than send garbage
			break
		}
		mu.Lock()
		st.LagMax = max(st.LagMax, lag)
		st.ByKind[ev.Kind]++
		st.ByMarket[ev.Market]++
		mu.Unlock()
		sent.Add(1)
		inflight.Add(1)
		wg.Add(1)
		go func() {
			defer func() { <-sem; inflight.Add(-1); wg.Done() }()
			code := Post(ctx, client, opts.URL, ce)
			switch {
			case code >= 200 && code < 300:
				ok.Add(1)
			case code >= 400 && code < 500:
				rejected.Add(1)
			default:
				failed.Add(1)
			}
			mu.Lock()
			st.Status[code]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(stopProgress)
	<-progressDone
	st.Sent, st.Accepted, st.Rejected, st.Failed = sent.Load(), ok.Load(), rejected.Load(), failed.Load()
	st.Elapsed = time.Since(start)
	if runErr == nil && st.Sent == 0 && st.Stopped == StoppedWindow {
		runErr = ErrNoEvents
	}
	return st, runErr
}

// Post sends ev to target in binary mode (as Knative's own senders do) and
// returns the HTTP status, 0 when there was no answer.
func Post(ctx context.Context, client *http.Client, target string, ev cloudevents.Event) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, nil)
	if err != nil {
		return 0
	}
	if err := cehttp.WriteRequest(ctx, binding.ToMessage(&ev), req); err != nil {
		return 0
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	// Drain so the connection is reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, responseBytesMax))
	resp.Body.Close()
	return resp.StatusCode
}

// responseBytesMax bounds what is read of an answer (the Broker's are a
// line of text).
const responseBytesMax = 64 << 10
