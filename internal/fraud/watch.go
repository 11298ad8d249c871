package fraud

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// EnvRules names the environment variable with the path of the rules file
// (on a cluster, the file the ConfigMap fraud-rules is mounted as). Unset,
// the built-in default rules are used.
const EnvRules = "SEBELAS_FRAUD_RULES"

// rulesPollMs is how often the rules file is checked for changes. Kubernetes
// updates a mounted ConfigMap by swapping a symlink, which file watchers see
// unreliably, and only after the kubelet's sync (about a minute), so polling
// a small file every two seconds is both robust and fast enough.
const rulesPollMs = 2000

// defaultRules is the default rule set, the same document as the data of
// infra/knative/fraud-rules.yaml (a test keeps them equal).
//
//go:embed default_rules.yaml
var defaultRules []byte

// DefaultRules compiles the built-in rule set.
func DefaultRules() (*Ruleset, error) { return ParseRules(defaultRules) }

// Environment variables of the operator's emergency blocklists: wallet or
// device ids, comma-separated, added to the rules' lists blocked_wallets and
// blocked_devices (which the default rules deny). They take effect with a
// new revision, without touching the risk team's ConfigMap.
const (
	EnvBlockedWallets = "SEBELAS_FRAUD_BLOCKED_WALLETS"
	EnvBlockedDevices = "SEBELAS_FRAUD_BLOCKED_DEVICES"
)

// ListsFromEnv reads the emergency blocklists.
func ListsFromEnv(getenv func(string) string) (map[string][]string, error) {
	lists := map[string][]string{}
	for env, list := range map[string]string{EnvBlockedWallets: "blocked_wallets", EnvBlockedDevices: "blocked_devices"} {
		v := strings.TrimSpace(getenv(env))
		if v == "" {
			continue
		}
		for _, id := range strings.Split(v, ",") {
			id = strings.TrimSpace(id)
			if id == "" || len(id) > listEntryBytesMax {
				return nil, fmt.Errorf("%s: entries must be 1..%d bytes, comma-separated", env, listEntryBytesMax)
			}
			lists[list] = append(lists[list], id)
		}
		if len(lists[list]) > listEntriesMax {
			return nil, fmt.Errorf("%s: %d entries, at most %d", env, len(lists[list]), listEntriesMax)
		}
	}
	return lists, nil
}

// DefaultRulesYAML returns the built-in rule document.
func DefaultRulesYAML() []byte { return append([]byte(nil), defaultRules...) }

// RuleSource gives the rule set in force.
type RuleSource interface {
	Current() *Ruleset
}

// StaticRules is a RuleSource that never changes.
type StaticRules struct{ Rules *Ruleset }

// Current implements RuleSource.
func (s StaticRules) Current() *Ruleset { return s.Rules }

// Watcher keeps the rule set of a file in force: it reloads the file when
// its content changes, and when the new content is broken it logs why and
// keeps the last good rule set.
type Watcher struct {
	path  string
	extra map[string][]string
	log   *slog.Logger

	cur      atomic.Pointer[Ruleset]
	mu       sync.Mutex // serialises Check
	lastErr  error
	onReload func(*Ruleset, error)
}

// NewWatcher loads path, adding extra to its named lists on every load. A
// broken file is an error here: with no rule set in force yet, the function
// must not start (Knative keeps the previous revision serving).
func NewWatcher(path string, extra map[string][]string, log *slog.Logger) (*Watcher, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &Watcher{path: path, extra: extra, log: log}
	rs, err := w.load()
	if err != nil {
		return nil, err
	}
	w.cur.Store(rs)
	return w, nil
}

// Current implements RuleSource.
func (w *Watcher) Current() *Ruleset { return w.cur.Load() }

// LastError is the problem of the most recent check, nil when it loaded or
// found nothing new.
func (w *Watcher) LastError() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastErr
}

// OnReload sets a hook called after every check that found a change:
// with the new rule set, or with the error that kept the old one.
func (w *Watcher) OnReload(fn func(*Ruleset, error)) {
	w.mu.Lock()
	w.onReload = fn
	w.mu.Unlock()
}

func (w *Watcher) load() (*Ruleset, error) {
	f, err := os.Open(w.path)
	if err != nil {
		return nil, fmt.Errorf("fraud rules: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, rulesBytesMax+1))
	if err != nil {
		return nil, fmt.Errorf("fraud rules %s: %w", w.path, err)
	}
	rs, err := ParseRulesWithLists(data, w.extra)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", w.path, err)
	}
	return rs, nil
}

// Check reloads the file if its content changed. It reports whether a new
// rule set is in force; a broken file leaves the old one and is returned as
// the error.
func (w *Watcher) Check() (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	old := w.cur.Load()
	rs, err := w.load()
	if err != nil {
		var re *RuleError
		if errors.As(err, &re) {
			// Report a broken file once, not every poll.
			if w.lastErr == nil || w.lastErr.Error() != err.Error() {
				w.log.Error("fraud rules rejected, the previous rules stay in force", "version", old.Version, "err", err)
				if w.onReload != nil {
					w.onReload(nil, err)
				}
			}
		} else {
			w.log.Warn("fraud rules unreadable, the previous rules stay in force", "version", old.Version, "err", err)
		}
		w.lastErr = err
		return false, err
	}
	w.lastErr = nil
	if rs.Hash == old.Hash {
		return false, nil
	}
	w.cur.Store(rs)
	w.log.Info("fraud rules reloaded", "version", rs.Version, "previous", old.Version, "rules", rs.Rules())
	if w.onReload != nil {
		w.onReload(rs, nil)
	}
	return true, nil
}

// Run checks the file every interval until ctx is done; 0 means
// rulesPollMs.
func (w *Watcher) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = rulesPollMs * time.Millisecond
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			_, _ = w.Check()
		}
	}
}
