package chaos_test

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	"github.com/sebelas/sebelas/internal/devtools/chaos"
)

// TestShortChaosRun is the bounded form of `sebelas chaos` that every test
// run does: a small mixed workload under every kind of fault, then every
// invariant. It fails on any failed check and prints the figures with -v.
func TestShortChaosRun(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos run skipped with -short")
	}
	o := chaos.Short()
	o.Seed = uint64(time.Now().UnixNano()) // a new fault pattern every run; the seed is printed
	if testing.Verbose() {
		o.Progress = os.Stderr
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := chaos.Run(ctx, o)
	if err != nil {
		t.Fatalf("chaos run (seed %d): %v", o.Seed, err)
	}
	var out bytes.Buffer
	rep.Print(&out)
	t.Log("\n" + out.String())
	if !rep.Passed() {
		t.Fatalf("chaos run seed %d failed its checks:\n%s", o.Seed, out.String())
	}
	for _, kind := range []string{chaos.FaultDuplicate, chaos.FaultDBThrottle, chaos.FaultDBRestart} {
		if rep.Faults[kind] == 0 {
			t.Errorf("no %q injected: the run did not test it", kind)
		}
	}
}
