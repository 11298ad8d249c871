package bench

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/devtools/burst"
	"github.com/sebelas/sebelas/internal/signing"
)

// Instance is one function binary run as its own process, as one pod would
// run it, driven directly (no Broker): its CPU per request is what sizes a
// pod.
type Instance struct {
	Name     string
	Requests int           // requests answered 2xx
	CPU      time.Duration // the process's user+system CPU over the phase
	Latency  Latency       // of one request to it
}

// CPUPerRequest is the process's CPU time per request.
func (in Instance) CPUPerRequest() time.Duration {
	if in.Requests == 0 {
		return 0
	}
	return in.CPU / time.Duration(in.Requests)
}

// RequestsPerCPUSecond is what one fully used CPU serves.
func (in Instance) RequestsPerCPUSecond() float64 {
	if in.CPU == 0 {
		return 0
	}
	return float64(in.Requests) / in.CPU.Seconds()
}

// InstancePhase is (c): fraud and charge as separate processes, each
// charge.requested POSTed to fraud and fraud's reply POSTed to charge by the
// benchmark's workers (standing in for the Broker).
type InstancePhase struct {
	Instances  []Instance
	Charges    int // successful charges
	Elapsed    time.Duration
	Throughput float64
	Outcomes   map[string]int
	Err        string
}

// instanceChain names the functions of the charge path, in order.
var instanceChain = []string{"fraud", "charge"}

type process struct {
	name string
	cmd  *exec.Cmd
	url  string
	done chan error
	out  bytes.Buffer
}

func startProcess(ctx context.Context, bin string, env []string) (*process, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	p := &process{name: filepath.Base(bin), url: fmt.Sprintf("http://127.0.0.1:%d/", port), done: make(chan error, 1)}
	p.cmd = exec.Command(bin)
	p.cmd.Env = append(env, "PORT="+strconv.Itoa(port))
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { p.done <- p.cmd.Wait() }()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(readyTimeoutMs * time.Millisecond)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		select {
		case err := <-p.done:
			p.done <- err
			return nil, fmt.Errorf("%s exited: %v", p.name, err)
		default:
		}
		if resp, err := client.Get(p.url + "healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		time.Sleep(pollIntervalUs * time.Microsecond)
	}
	p.stop()
	return nil, fmt.Errorf("%s not ready", p.name)
}

func (p *process) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopTimeoutMs * time.Millisecond):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// hop POSTs ev to url in binary mode and returns the reply event.
func hop(ctx context.Context, client *http.Client, url string, ev cloudevents.Event) (*cloudevents.Event, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return nil, err
	}
	if err := cehttp.WriteRequest(ctx, binding.ToMessage(&ev), req); err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	return binding.ToEvent(ctx, cehttp.NewMessageFromHttpResponse(resp))
}

// measureInstances runs phase (c) for d with concurrency workers against
// the table (through endpoint), using the binaries built in binDir.
func measureInstances(ctx context.Context, binDir, endpoint, tableName string, concurrency int, d time.Duration,
	p burst.Profile, src *eventSource, run string) InstancePhase {
	var res InstancePhase
	keys := signing.NewDevKeys()
	env := podEnv(binDir, endpoint, tableName, keys)
	procs := map[string]*process{}
	stopAll := func() {
		for name, pr := range procs {
			pr.stop()
			delete(procs, name)
		}
	}
	defer stopAll()
	for _, name := range instanceChain {
		bin := filepath.Join(binDir, name)
		if _, err := os.Stat(bin); err != nil {
			res.Err = fmt.Sprintf("%s was not built", name)
			return res
		}
		pr, err := startProcess(ctx, bin, env)
		if err != nil {
			res.Err = err.Error()
			return res
		}
		procs[name] = pr
	}
	client := &http.Client{Timeout: pathTimeoutMs * time.Millisecond, Transport: &http.Transport{
		MaxIdleConns: 2 * concurrency, MaxIdleConnsPerHost: concurrency, IdleConnTimeout: 30 * time.Second}}
	var mu sync.Mutex
	lats := map[string][]time.Duration{}
	count := map[string]int{}
	do := func(ctx context.Context, ev burst.Event) (string, time.Duration) {
		ce, err := p.CloudEvent(run, ev, time.Now())
		if err != nil {
			return "error: " + err.Error(), 0
		}
		// As the ingress would: fraud screens only requests it signed.
		if err := keys.Sign(&ce, time.Now()); err != nil {
			return "error: " + err.Error(), 0
		}
		for _, name := range instanceChain {
			t0 := time.Now()
			reply, err := hop(ctx, client, procs[name].url, ce)
			lat := time.Since(t0)
			if err != nil || reply == nil {
				return fmt.Sprintf("error: %s: %v", name, err), 0
			}
			mu.Lock()
			lats[name] = append(lats[name], lat)
			count[name]++
			mu.Unlock()
			ce = *reply
		}
		if ce.Type() != events.TypeChargeSucceeded {
			return ce.Type(), 0
		}
		return outcomeSucceeded, 0
	}
	cpu0 := map[string]time.Duration{}
	for name, pr := range procs {
		cpu0[name] = cpuOf(pr.cmd.Process.Pid)
	}
	t0 := time.Now()
	samples := closedLoop(ctx, concurrency, d, 0, src, do)
	res.Elapsed = time.Since(t0)
	res.Outcomes = countOutcomes(samples)
	for _, s := range samples {
		if s.ok {
			res.Charges++
		}
	}
	if res.Elapsed > 0 {
		res.Throughput = float64(res.Charges) / res.Elapsed.Seconds()
	}
	outputs := map[string]*bytes.Buffer{}
	for _, name := range instanceChain {
		pr := procs[name]
		res.Instances = append(res.Instances, Instance{Name: name, Requests: count[name],
			CPU: cpuOf(pr.cmd.Process.Pid) - cpu0[name], Latency: summarize(lats[name])})
		outputs[name] = &pr.out
	}
	stopAll() // before reading what they wrote
	if res.Charges == 0 {
		var msgs []string
		for _, name := range instanceChain {
			msgs = append(msgs, name+": "+oneLine(outputs[name].String()))
		}
		res.Err = fmt.Sprintf("no charge went through: %v", msgs)
	}
	return res
}

// SuggestedTarget is the autoscaling.knative.dev/target that keeps one pod
// with cpuLimit CPUs at Knative's target utilisation of its CPU: a pod is
// saturated at cpuLimit/CPUPerRequest requests/s, which by Little's law is
// serviceTime x that many in flight; Knative then aims at 70% of the target.
func (in Instance) SuggestedTarget(serviceTime time.Duration, cpuLimit float64) float64 {
	c := in.CPUPerRequest()
	if c <= 0 {
		return 0
	}
	return serviceTime.Seconds() * cpuLimit / c.Seconds()
}
