package ddblocal

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func startT(t *testing.T, opts Options) *Instance {
	t.Helper()
	opts.Logf = t.Logf
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	inst, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { inst.Stop() })
	return inst
}

func answers(endpoint string) bool {
	hc := &http.Client{Timeout: 2 * time.Second}
	return probe(context.Background(), hc, endpoint) == nil
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z' && s[i+2] != 'X'
	}
	return true
}

func TestStartInMemoryAndStop(t *testing.T) {
	inst := startT(t, Options{InMemory: true, SharedDB: true})
	if !strings.HasPrefix(inst.Endpoint, "http://127.0.0.1:") || inst.Port == 0 {
		t.Errorf("Endpoint = %q, Port = %d", inst.Endpoint, inst.Port)
	}
	if !answers(inst.Endpoint) {
		t.Fatal("instance does not answer after Start")
	}
	if pgid, err := syscall.Getpgid(inst.PID); err != nil || pgid != inst.PID {
		t.Errorf("JVM process group = %d, %v; want its own (%d)", pgid, err, inst.PID)
	}
	if err := inst.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	select {
	case <-inst.Done():
	default:
		t.Fatal("Stop returned before the process exited")
	}
	if alive(inst.PID) {
		t.Errorf("pid %d still alive after Stop", inst.PID)
	}
	if answers(inst.Endpoint) {
		t.Error("endpoint still answers after Stop")
	}
	if err := inst.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestStartOnDiskOnAGivenPort(t *testing.T) {
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	inst := startT(t, Options{Port: port, DBPath: dir, SharedDB: true})
	if inst.Port != port {
		t.Errorf("Port = %d, want %d", inst.Port, port)
	}
	t0 := time.Now()
	if err := inst.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	t.Logf("Stop (SIGTERM) took %s", time.Since(t0))
}

// TestDiesWithParent runs a child test binary that starts DynamoDB Local and
// exits without Stop: the JVM must not outlive it.
func TestDiesWithParent(t *testing.T) {
	if os.Getenv("DDBLOCAL_ORPHAN_HELPER") == "1" {
		inst, err := Start(context.Background(), Options{InMemory: true})
		if err != nil {
			fmt.Println("ERR", err)
			os.Exit(1)
		}
		fmt.Println("PID", inst.PID)
		os.Exit(0) // no Stop
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDiesWithParent$")
	cmd.Env = append(os.Environ(), "DDBLOCAL_ORPHAN_HELPER=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == "PID" {
			pid, _ = strconv.Atoi(f[1])
		} else if len(f) > 0 && f[0] == "ERR" {
			t.Errorf("helper: %s", sc.Text())
		}
	}
	cmd.Wait()
	if pid == 0 {
		t.Fatal("helper printed no PID")
	}
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(-pid, syscall.SIGKILL)
			t.Fatalf("JVM %d outlived its parent", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
