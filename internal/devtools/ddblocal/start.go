package ddblocal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ReadyTimeout is how long Start waits for DynamoDB Local to answer unless
// Options.ReadyTimeout says otherwise.
const ReadyTimeout = 60 * time.Second

// DefaultJavaArgs are the JVM flags Start uses when Options.JavaArgs is nil.
// C1-only JIT halves the CPU the JVM burns to start (about 2.5 instead of
// 4.7 CPU-seconds here), which matters when several test binaries start
// their instance at once on two cores; the throughput of the emulator was
// not measurably worse.
var DefaultJavaArgs = []string{"-XX:TieredStopAtLevel=1"}

// Options says how to run DynamoDB Local.
type Options struct {
	Root     string // repository root holding .cache; empty = RepoRoot()
	Port     int    // 0 = pick a free port
	InMemory bool   // keep all data in memory (-inMemory)
	DBPath   string // else: directory of the database file (-dbPath); empty = a fresh temp dir
	// SharedDB makes every client see the same tables whatever its
	// credentials and region (-sharedDb). Without it DynamoDB Local keeps
	// one database per access key and region.
	SharedDB bool
	// JavaArgs are JVM flags put before -jar; nil means DefaultJavaArgs,
	// an empty slice none.
	JavaArgs     []string
	ReadyTimeout time.Duration        // 0 = ReadyTimeout
	Logf         func(string, ...any) // may be nil
}

// Instance is a running DynamoDB Local.
type Instance struct {
	Endpoint string // http://127.0.0.1:<port>
	Port     int
	PID      int

	out      *ringBuffer
	inMemory bool
	tmpDir   string        // removed by Stop
	done     chan struct{} // closed when the process has exited
	waitErr  error         // valid after done
	stopOnce sync.Once
	stopErr  error
}

// Start installs DynamoDB Local if needed, runs it and waits until it
// answers HTTP. The JVM runs in its own process group and gets SIGKILL when
// the calling process dies, so it does not outlive a test binary.
func Start(ctx context.Context, opts Options) (*Instance, error) {
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if opts.Root == "" {
		root, err := RepoRoot()
		if err != nil {
			return nil, err
		}
		opts.Root = root
	}
	jarDir, err := Install(ctx, opts.Root, logf)
	if err != nil {
		return nil, err
	}
	tmpDir := ""
	if !opts.InMemory && opts.DBPath == "" {
		dir, err := os.MkdirTemp("", "dynamodb-local-")
		if err != nil {
			return nil, fmt.Errorf("ddblocal: %w", err)
		}
		opts.DBPath, tmpDir = dir, dir
	}
	// A free port picked by the kernel can be taken by someone else before
	// the JVM binds it; try again with another one.
	tries := 1
	if opts.Port == 0 {
		tries = 3
	}
	for i := 1; ; i++ {
		inst, err := start(ctx, jarDir, opts, logf)
		if err == nil {
			inst.tmpDir = tmpDir
			return inst, nil
		}
		if i >= tries || !errors.Is(err, errPortInUse) {
			if tmpDir != "" {
				os.RemoveAll(tmpDir)
			}
			return nil, err
		}
		logf("ddblocal: %v; trying another port", err)
	}
}

var errPortInUse = errors.New("port already in use")

func start(ctx context.Context, jarDir string, opts Options, logf func(string, ...any)) (*Instance, error) {
	port := opts.Port
	if port == 0 {
		p, err := freePort()
		if err != nil {
			return nil, fmt.Errorf("ddblocal: pick a port: %w", err)
		}
		port = p
	}
	java, err := exec.LookPath("java")
	if err != nil {
		return nil, fmt.Errorf("ddblocal: %w", err)
	}
	javaArgs := opts.JavaArgs
	if javaArgs == nil {
		javaArgs = DefaultJavaArgs
	}
	args := append(append([]string(nil), javaArgs...),
		"-Djava.library.path="+filepath.Join(jarDir, "DynamoDBLocal_lib"),
		"-jar", filepath.Join(jarDir, "DynamoDBLocal.jar"),
		"-port", strconv.Itoa(port),
		// Never phone home: a test run has no business sending anything
		// anywhere.
		"-disableTelemetry",
	)
	if opts.InMemory {
		args = append(args, "-inMemory")
	} else {
		if err := os.MkdirAll(opts.DBPath, 0o755); err != nil {
			return nil, fmt.Errorf("ddblocal: %w", err)
		}
		args = append(args, "-dbPath", opts.DBPath)
	}
	if opts.SharedDB {
		args = append(args, "-sharedDb")
	}

	inst := &Instance{
		Endpoint: "http://127.0.0.1:" + strconv.Itoa(port),
		Port:     port,
		out:      newRingBuffer(64 << 10),
		inMemory: opts.InMemory,
		done:     make(chan struct{}),
	}
	cmd := exec.Command(java, args...)
	cmd.Dir = jarDir
	cmd.Stdout = inst.out
	cmd.Stderr = inst.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}

	// Pdeathsig fires when the OS thread that forked the child exits, not
	// the process: fork from a locked thread that lives as long as the child.
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			close(inst.done)
			return
		}
		started <- nil
		inst.waitErr = cmd.Wait()
		close(inst.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("ddblocal: start %s: %w", java, err)
	}
	inst.PID = cmd.Process.Pid

	t0 := time.Now()
	readyTimeout := opts.ReadyTimeout
	if readyTimeout <= 0 {
		readyTimeout = ReadyTimeout
	}
	if err := inst.waitReady(ctx, readyTimeout); err != nil {
		inst.Stop()
		out := inst.Output()
		if strings.Contains(out, "Address already in use") || strings.Contains(out, "BindException") {
			return nil, fmt.Errorf("ddblocal: port %d: %w", port, errPortInUse)
		}
		return nil, fmt.Errorf("ddblocal: DynamoDB Local (%s %s) did not come up: %w\noutput:\n%s",
			java, strings.Join(args, " "), err, tail([]byte(out), 4096))
	}
	logf("ddblocal: DynamoDB Local ready at %s in %s (pid %d)", inst.Endpoint, time.Since(t0).Round(time.Millisecond), inst.PID)
	return inst, nil
}

// waitReady polls until the server answers a DynamoDB request with any HTTP
// status below 500, the process exits, ctx ends or timeout passes.
func (in *Instance) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		if err := probe(ctx, hc, in.Endpoint); err == nil {
			select {
			case <-in.done: // someone else answers on that port
				return fmt.Errorf("process exited: %v", in.waitErr)
			default:
				return nil
			}
		}
		select {
		case <-in.done:
			return fmt.Errorf("process exited: %v", in.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("not answering at %s: %w", in.Endpoint, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// probe sends an unsigned ListTables; DynamoDB Local answers it (with an
// authentication error) only once it is serving.
func probe(ctx context.Context, hc *http.Client, endpoint string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/", strings.NewReader("{}"))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("X-Amz-Target", "DynamoDB_20120810.ListTables")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// Output returns the last 64 KiB the process printed.
func (in *Instance) Output() string { return in.out.String() }

// Done is closed when the process has exited.
func (in *Instance) Done() <-chan struct{} { return in.done }

// Stop ends the process group and waits for the process: SIGKILL for an
// in-memory instance (there is nothing to save), else SIGTERM and SIGKILL
// after 5 s. It removes a database directory Start made. It may be called
// more than once.
func (in *Instance) Stop() error {
	in.stopOnce.Do(func() {
		in.stopErr = in.kill()
		if in.tmpDir != "" {
			os.RemoveAll(in.tmpDir)
		}
	})
	return in.stopErr
}

func (in *Instance) kill() error {
	select {
	case <-in.done:
		return nil
	default:
	}
	if !in.inMemory {
		syscall.Kill(-in.PID, syscall.SIGTERM)
		select {
		case <-in.done:
			return nil
		case <-time.After(5 * time.Second):
		}
	}
	syscall.Kill(-in.PID, syscall.SIGKILL)
	select {
	case <-in.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("ddblocal: pid %d did not exit after SIGKILL", in.PID)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ringBuffer keeps the last max bytes written to it.
type ringBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func newRingBuffer(max int) *ringBuffer { return &ringBuffer{max: max} }

func (r *ringBuffer) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(p)
	if len(p) >= r.max {
		r.buf = append(r.buf[:0], p[len(p)-r.max:]...)
		return n, nil
	}
	if over := len(r.buf) + len(p) - r.max; over > 0 {
		r.buf = append(r.buf[:0], r.buf[over:]...)
	}
	r.buf = append(r.buf, p...)
	return n, nil
}

func (r *ringBuffer) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return string(r.buf)
}
