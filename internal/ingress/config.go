package ingress

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Environment variables Build reads. Secrets come from Kubernetes Secrets,
// either as a mounted file (preferred: the kubelet updates the file in place
// when the Secret changes, so a key rotation needs no redeploy) or through
// an env var (secretKeyRef; read once at start). Nothing secret is ever in
// the repository: infra/secrets holds a Secret-shaped example only.
const (
	EnvKeys          = "SEBELAS_INGRESS_KEYS"
	EnvKeysFile      = "SEBELAS_INGRESS_KEYS_FILE"
	EnvMerchants     = "SEBELAS_INGRESS_MERCHANTS"
	EnvMerchantsFile = "SEBELAS_INGRESS_MERCHANTS_FILE"
	// EnvSink is where Knative's SinkBinding/ContainerSource put the
	// Broker's address; EnvBrokerURL is the same set by hand.
	EnvSink      = "K_SINK"
	EnvBrokerURL = "SEBELAS_BROKER_URL"
)

// Limits of the configuration. They bound what a broken or hostile Secret
// can make the ingress allocate and loop over.
const (
	// KeysPerMarketplaceMax is two: the key in use and the next (or the
	// last) one, so a marketplace can switch keys without a moment where
	// neither side accepts the other. A third key is a configuration error.
	KeysPerMarketplaceMax = 2
	// marketplacesMax bounds the marketplaces one ingress serves.
	marketplacesMax = 1_000
	// merchantPatternsMax bounds the merchant patterns of one marketplace;
	// more belongs in the table, not in a Secret.
	merchantPatternsMax = 1_000
	// configBytesMax bounds a keys or merchants file (or env value).
	configBytesMax = 1 << 20
	// secretBytesMin is the shortest secret accepted: HMAC-SHA256 keys
	// shorter than the hash output (32 bytes) weaken it (RFC 2104 §3).
	secretBytesMin = 32
	// secretBytesMax: longer keys are hashed down by HMAC anyway.
	secretBytesMax = 64
	// reloadIntervalMs is how often a request may look at the mounted
	// files for a change: the kubelet itself syncs Secrets about once a
	// minute, so checking more often than every 10 s buys nothing.
	reloadIntervalMs = 10_000
)

// idPattern is events' id shape (common.json#/$defs/id): marketplace ids,
// key ids and merchant ids all use it, so they are safe in logs and keys.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$`)

// Key is one active HMAC key of a marketplace.
type Key struct {
	ID     string // names the key in logs; never the secret
	Secret []byte
}

// Marketplace is what the ingress knows about one marketplace.
type Marketplace struct {
	ID   string
	Keys []Key // 1..KeysPerMarketplaceMax
	// Merchants the marketplace may act for: exact ids, and prefixes
	// (written "prefix*" in the configuration).
	Exact    map[string]bool
	Prefixes []string
}

// MayActFor reports whether the marketplace may charge for merchant.
func (m *Marketplace) MayActFor(merchant string) bool {
	if m == nil || merchant == "" {
		return false
	}
	if m.Exact[merchant] {
		return true
	}
	for _, p := range m.Prefixes {
		if strings.HasPrefix(merchant, p) {
			return true
		}
	}
	return false
}

// Config is an immutable set of marketplaces.
type Config struct {
	Marketplaces map[string]*Marketplace
}

// ParseConfig reads the keys and merchants texts.
//
// Keys, one per line (blank lines and lines starting with '#' ignored;
// ';' also ends an entry, for env values):
//
//	<marketplace> <key-id> <secret, base64 (standard or URL alphabet), 32..64 bytes>
//
// Merchants, one marketplace per line:
//
//	<marketplace> <merchant-id or prefix*> [more ...]
//
// Every marketplace with keys needs a merchants line and vice versa: a
// marketplace that may act for nobody, or merchants without a way in, is a
// typo to refuse at start, not a silent 403 at the festival.
func ParseConfig(keys, merchants []byte) (*Config, error) {
	if len(keys) > configBytesMax || len(merchants) > configBytesMax {
		return nil, fmt.Errorf("ingress config: %d and %d bytes, at most %d each", len(keys), len(merchants), configBytesMax)
	}
	c := &Config{Marketplaces: map[string]*Marketplace{}}
	get := func(id string) (*Marketplace, error) {
		if m, ok := c.Marketplaces[id]; ok {
			return m, nil
		}
		if len(c.Marketplaces) >= marketplacesMax {
			return nil, fmt.Errorf("more than %d marketplaces", marketplacesMax)
		}
		m := &Marketplace{ID: id, Exact: map[string]bool{}}
		c.Marketplaces[id] = m
		return m, nil
	}
	err := eachEntry(keys, func(n int, fields []string) error {
		if len(fields) != 3 {
			return fmt.Errorf("keys entry %d: want <marketplace> <key-id> <secret>, got %d fields", n, len(fields))
		}
		mp, keyID := fields[0], fields[1]
		if !idPattern.MatchString(mp) || !idPattern.MatchString(keyID) {
			return fmt.Errorf("keys entry %d: marketplace and key id must match %s", n, idPattern)
		}
		secret, err := decodeSecret(fields[2])
		if err != nil {
			// The secret itself is never quoted.
			return fmt.Errorf("keys entry %d (%s/%s): %w", n, mp, keyID, err)
		}
		m, err := get(mp)
		if err != nil {
			return err
		}
		for _, k := range m.Keys {
			if k.ID == keyID {
				return fmt.Errorf("keys entry %d: key %s/%s given twice", n, mp, keyID)
			}
		}
		if len(m.Keys) >= KeysPerMarketplaceMax {
			return fmt.Errorf("keys entry %d: marketplace %s has more than %d active keys (retire the oldest first)", n, mp, KeysPerMarketplaceMax)
		}
		m.Keys = append(m.Keys, Key{ID: keyID, Secret: secret})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ingress config: %w", err)
	}
	seen := map[string]bool{}
	err = eachEntry(merchants, func(n int, fields []string) error {
		if len(fields) < 2 {
			return fmt.Errorf("merchants entry %d: want <marketplace> <merchant or prefix*>...", n)
		}
		mp := fields[0]
		m, ok := c.Marketplaces[mp]
		if !ok {
			return fmt.Errorf("merchants entry %d: marketplace %.64q has no keys", n, mp)
		}
		if seen[mp] {
			return fmt.Errorf("merchants entry %d: marketplace %s listed twice", n, mp)
		}
		seen[mp] = true
		if len(fields)-1 > merchantPatternsMax {
			return fmt.Errorf("merchants entry %d: %d patterns, at most %d", n, len(fields)-1, merchantPatternsMax)
		}
		for _, p := range fields[1:] {
			prefix, isPrefix := strings.CutSuffix(p, "*")
			// A bare "*" (any merchant) is refused: acting for every
			// merchant is exactly what the check exists to prevent.
			if !idPattern.MatchString(prefix) {
				return fmt.Errorf("merchants entry %d: pattern %.70q: want a merchant id or a non-empty prefix followed by *", n, p)
			}
			if isPrefix {
				m.Prefixes = append(m.Prefixes, prefix)
			} else {
				m.Exact[prefix] = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ingress config: %w", err)
	}
	for id := range c.Marketplaces {
		if !seen[id] {
			return nil, fmt.Errorf("ingress config: marketplace %s has keys but no merchants entry", id)
		}
	}
	return c, nil
}

func eachEntry(text []byte, fn func(n int, fields []string) error) error {
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 0, 64<<10), configBytesMax)
	n := 0
	for sc.Scan() {
		for _, entry := range strings.Split(sc.Text(), ";") {
			entry = strings.TrimSpace(entry)
			if entry == "" || strings.HasPrefix(entry, "#") {
				continue
			}
			n++
			if err := fn(n, strings.Fields(entry)); err != nil {
				return err
			}
		}
	}
	return sc.Err()
}

func decodeSecret(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		b, err := enc.DecodeString(s)
		if err != nil {
			continue
		}
		if len(b) < secretBytesMin || len(b) > secretBytesMax {
			return nil, fmt.Errorf("secret is %d bytes, want %d..%d (e.g. `openssl rand -base64 32`)", len(b), secretBytesMin, secretBytesMax)
		}
		return b, nil
	}
	return nil, errors.New("secret is not base64")
}

// source is one configuration text: a fixed env value, or a file that is
// re-read when it changes.
type source struct {
	env  string
	path string
}

func (s source) read() ([]byte, string, error) {
	if s.path == "" {
		return []byte(s.env), "", nil
	}
	st, err := os.Stat(s.path)
	if err != nil {
		return nil, "", err
	}
	if st.Size() > configBytesMax {
		return nil, "", fmt.Errorf("%s is %d bytes, at most %d", s.path, st.Size(), configBytesMax)
	}
	b, err := os.ReadFile(s.path)
	if err != nil {
		return nil, "", err
	}
	// Size and mtime: the kubelet swaps the ..data symlink, which changes
	// both for the file as seen through it.
	return b, fmt.Sprintf("%d/%d", st.Size(), st.ModTime().UnixNano()), nil
}

// liveConfig holds the current Config and reloads it from files.
type liveConfig struct {
	keys, merchants source
	now             func() time.Time
	onReload        func(err error)

	cur       atomic.Pointer[Config]
	mu        sync.Mutex // one reload at a time
	version   string
	nextCheck atomic.Int64 // unix ms
}

func newLiveConfig(keys, merchants source, now func() time.Time, onReload func(error)) (*liveConfig, error) {
	lc := &liveConfig{keys: keys, merchants: merchants, now: now, onReload: onReload}
	if _, err := lc.reload(); err != nil {
		return nil, err
	}
	return lc, nil
}

// reload reads the sources and swaps in a new Config if they changed.
func (lc *liveConfig) reload() (changed bool, err error) {
	k, kv, err := lc.keys.read()
	if err != nil {
		return false, fmt.Errorf("ingress keys: %w", err)
	}
	m, mv, err := lc.merchants.read()
	if err != nil {
		return false, fmt.Errorf("ingress merchants: %w", err)
	}
	version := kv + "|" + mv
	if version == lc.version && lc.cur.Load() != nil {
		return false, nil
	}
	c, err := ParseConfig(k, m)
	if err != nil {
		return false, err
	}
	lc.cur.Store(c)
	lc.version = version
	return true, nil
}

// get returns the current Config, reloading first when the files may have
// changed. A failed reload keeps the last good Config (a half-written
// Secret must not lock every marketplace out) and is reported.
func (lc *liveConfig) get() *Config {
	if lc.keys.path == "" && lc.merchants.path == "" {
		return lc.cur.Load()
	}
	now := lc.now().UnixMilli()
	next := lc.nextCheck.Load()
	if now >= next && lc.nextCheck.CompareAndSwap(next, now+reloadIntervalMs) {
		lc.mu.Lock()
		changed, err := lc.reload()
		lc.mu.Unlock()
		if (changed || err != nil) && lc.onReload != nil {
			lc.onReload(err)
		}
	}
	return lc.cur.Load()
}
