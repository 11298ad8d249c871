package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/sebelas/sebelas/internal/signing"
	"github.com/sebelas/sebelas/internal/table"
)

// Targets of the issue for a function binary.
const (
	ColdStartTargetMs = 50
	// The issue says 25 MB: decimal megabytes, 25,000,000 bytes (24.8 MiB),
	// the stricter reading.
	BinaryBytesTarget = 25_000_000
)

// Limits of the cold-start measurement.
const (
	readyTimeoutMs  = 10_000
	pollIntervalUs  = 200
	buildTimeoutSec = 300
	stopTimeoutMs   = 5_000
	initTopShown    = 3
)

// ColdStart is one function binary: its size and how long a fresh process
// takes from exec to answering GET /healthz.
type ColdStart struct {
	Name  string
	Bytes int64
	Runs  []time.Duration
	P50   time.Duration
	Max   time.Duration
	// InitMs is the clock time of package initialisation (GODEBUG
	// inittrace), and InitTop its largest packages: the part of start-up
	// that happens before main.
	InitMs  float64
	InitTop []InitCost
	Err     string
}

// InitCost is one package's initialisation.
type InitCost struct {
	Package string
	Ms      float64
}

// podEnv is the environment of a Knative pod, not this shell's: the
// Service's variables, what Knative adds, HOME for the SDK's config lookup.
// (A developer shell may carry AWS_CA_BUNDLE, whose PEM parsing alone costs
// the SDK's config loader several milliseconds a pod never pays.)
func podEnv(home, endpoint, tableName string, keys signing.DevKeys) []string {
	env := []string{"HOME=" + home, "K_SERVICE=bench", "K_REVISION=bench-00001", "K_CONFIGURATION=bench",
		"AWS_REGION=ap-southeast-1", "AWS_ENDPOINT_URL_DYNAMODB=" + endpoint, "SEBELAS_TABLE=" + tableName,
		"SEBELAS_LOG_LEVEL=error",
		table.EnvTimeoutMs + "=" + strconv.Itoa(localTimeoutMs),
		// Addresses some functions require at start (their Build checks
		// them; nothing is sent to them while only /healthz is asked for).
		"K_SINK=http://127.0.0.1:9/", "SEBELAS_OPERATOR_URL=http://127.0.0.1:9/"}
	// Every role's keys: each function reads only its own.
	for k, v := range keys.Env {
		env = append(env, k+"="+v)
	}
	return env
}

// measureColdStarts builds every functions/<name> into dir the way a
// release does (go build -trimpath -ldflags='-s -w') and starts each runs
// times.
func measureColdStarts(ctx context.Context, root, dir string, runs int, endpoint string) ([]ColdStart, error) {
	entries, err := os.ReadDir(filepath.Join(root, "functions"))
	if err != nil {
		return nil, err
	}
	env := podEnv(dir, endpoint, "cold-start", signing.NewDevKeys())
	var out []ColdStart
	var errs []error
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(root, "functions", e.Name(), "main.go")); err != nil {
			continue
		}
		c := ColdStart{Name: e.Name()}
		bin := filepath.Join(dir, e.Name())
		if err := build(ctx, root, e.Name(), bin); err != nil {
			c.Err = err.Error()
			errs = append(errs, fmt.Errorf("%s: %w", e.Name(), err))
			out = append(out, c)
			continue
		}
		if fi, err := os.Stat(bin); err == nil {
			c.Bytes = fi.Size()
		}
		for range runs {
			d, err := startOnce(ctx, bin, env)
			if err != nil {
				c.Err = err.Error()
				errs = append(errs, fmt.Errorf("%s: %w", e.Name(), err))
				break
			}
			c.Runs = append(c.Runs, d)
		}
		if len(c.Runs) > 0 {
			s := append([]time.Duration(nil), c.Runs...)
			sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
			c.P50, c.Max = percentile(s, 0.5), s[len(s)-1]
		}
		c.InitMs, c.InitTop = initTrace(ctx, bin, env)
		out = append(out, c)
	}
	return out, errors.Join(errs...)
}

func build(ctx context.Context, root, name, bin string) error {
	ctx, cancel := context.WithTimeout(ctx, buildTimeoutSec*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./functions/"+name)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startOnce runs bin and returns the time from exec to its first 200 on
// /healthz, then stops it with SIGTERM.
func startOnce(ctx context.Context, bin string, env []string) (time.Duration, error) {
	port, err := freePort()
	if err != nil {
		return 0, err
	}
	cmd := exec.Command(bin)
	cmd.Env = append(env, "PORT="+strconv.Itoa(port))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr // the runtime logs JSON to stdout, start-up errors included
	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", port)
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(stopTimeoutMs * time.Millisecond):
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	deadline := start.Add(readyTimeoutMs * time.Millisecond)
	for time.Now().Before(deadline) {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		select {
		case err := <-exited:
			exited <- err
			return 0, fmt.Errorf("exited before ready: %v: %s", err, bytes.TrimSpace(stderr.Bytes()))
		default:
		}
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start), nil
			}
		}
		time.Sleep(pollIntervalUs * time.Microsecond)
	}
	return 0, fmt.Errorf("not ready after %d ms", readyTimeoutMs)
}

var initLine = regexp.MustCompile(`^init (\S+) @[0-9.]+ ms, ([0-9.]+) ms clock`)

// initTrace runs bin once with GODEBUG=inittrace=1 and sums package
// initialisation.
func initTrace(ctx context.Context, bin string, env []string) (float64, []InitCost) {
	port, err := freePort()
	if err != nil {
		return 0, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = append(env, "PORT="+strconv.Itoa(port), "GODEBUG=inittrace=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return 0, nil
	}
	// Init is over long before this; the trace is on stderr.
	time.Sleep(500 * time.Millisecond)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
	var total float64
	var costs []InitCost
	sc := bufio.NewScanner(&stderr)
	for sc.Scan() {
		m := initLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		ms, _ := strconv.ParseFloat(m[2], 64)
		total += ms
		costs = append(costs, InitCost{Package: m[1], Ms: ms})
	}
	sort.Slice(costs, func(i, j int) bool { return costs[i].Ms > costs[j].Ms })
	if len(costs) > initTopShown {
		costs = costs[:initTopShown]
	}
	return total, costs
}
