package ingress

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
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
	// overlapsReportedMax bounds the overlapping patterns one report names.
	overlapsReportedMax = 20
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

// ParseConfig reads the keys and merchants texts, strictly: any problem is
// an error. It is what the first load uses (fail fast at start).
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
// typo to refuse at start, not a silent 403 at the festival. One secret may
// not serve two marketplaces (a request could not say which one sent it),
// and no merchant may be reachable by two marketplaces (exact ids or
// prefixes that overlap): each merchant has one marketplace that acts for it.
func ParseConfig(keys, merchants []byte) (*Config, error) {
	c, problems := parseConfig(keys, merchants)
	if len(problems) > 0 {
		return nil, fmt.Errorf("ingress config: %w", problems[0])
	}
	return c, nil
}

// parseConfig reads what it can: every broken entry is dropped and
// reported, and what is left is a usable Config that grants no more than
// the good entries say. This is what a reload applies, so that a key
// removed in the same update as an unrelated typo is still removed (fail
// closed); dropping an entry only ever takes access away.
func parseConfig(keys, merchants []byte) (*Config, []error) {
	c := &Config{Marketplaces: map[string]*Marketplace{}}
	if len(keys) > configBytesMax || len(merchants) > configBytesMax {
		return c, []error{fmt.Errorf("%d and %d bytes, at most %d each: nothing applied", len(keys), len(merchants), configBytesMax)}
	}
	var problems []error
	report := func(err error) { problems = append(problems, err) }
	parseKeys(c, keys, report)
	dropSharedSecrets(c, report)
	listed := parseMerchants(c, merchants, report)
	dropOverlaps(c, report)
	ids := make([]string, 0, len(c.Marketplaces))
	for id := range c.Marketplaces {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		m := c.Marketplaces[id]
		switch {
		case !listed[id]:
			report(fmt.Errorf("marketplace %s has keys but no merchants entry: dropped", id))
		case len(m.Keys) == 0:
			report(fmt.Errorf("marketplace %s has no usable key: dropped", id))
		case len(m.Exact) == 0 && len(m.Prefixes) == 0:
			report(fmt.Errorf("marketplace %s has no usable merchant pattern: dropped", id))
		default:
			continue
		}
		delete(c.Marketplaces, id)
	}
	return c, problems
}

func parseKeys(c *Config, keys []byte, report func(error)) {
	err := eachEntry(keys, func(n int, fields []string) {
		if len(fields) != 3 {
			report(fmt.Errorf("keys entry %d: want <marketplace> <key-id> <secret>, got %d fields", n, len(fields)))
			return
		}
		mp, keyID := fields[0], fields[1]
		if !idPattern.MatchString(mp) || !idPattern.MatchString(keyID) {
			report(fmt.Errorf("keys entry %d: marketplace and key id must match %s", n, idPattern))
			return
		}
		secret, err := decodeSecret(fields[2])
		if err != nil {
			// The secret itself is never quoted.
			report(fmt.Errorf("keys entry %d (%s/%s): %w", n, mp, keyID, err))
			return
		}
		m, ok := c.Marketplaces[mp]
		if !ok {
			if len(c.Marketplaces) >= marketplacesMax {
				report(fmt.Errorf("keys entry %d: more than %d marketplaces", n, marketplacesMax))
				return
			}
			m = &Marketplace{ID: mp, Exact: map[string]bool{}}
			c.Marketplaces[mp] = m
		}
		for _, k := range m.Keys {
			if k.ID == keyID {
				report(fmt.Errorf("keys entry %d: key %s/%s given twice", n, mp, keyID))
				return
			}
		}
		if len(m.Keys) >= KeysPerMarketplaceMax {
			report(fmt.Errorf("keys entry %d: marketplace %s has more than %d active keys (retire the oldest first)", n, mp, KeysPerMarketplaceMax))
			return
		}
		m.Keys = append(m.Keys, Key{ID: keyID, Secret: secret})
	})
	if err != nil {
		report(fmt.Errorf("keys: %w", err))
	}
}

// dropSharedSecrets removes every key whose secret another marketplace
// also has: a request signed with it could be either marketplace's.
func dropSharedSecrets(c *Config, report func(error)) {
	owners := map[string]map[string]bool{}
	for id, m := range c.Marketplaces {
		for _, k := range m.Keys {
			if owners[string(k.Secret)] == nil {
				owners[string(k.Secret)] = map[string]bool{}
			}
			owners[string(k.Secret)][id] = true
		}
	}
	for id, m := range c.Marketplaces {
		kept := m.Keys[:0]
		for _, k := range m.Keys {
			if len(owners[string(k.Secret)]) > 1 {
				report(fmt.Errorf("key %s/%s: its secret is also another marketplace's: dropped (one secret per marketplace)", id, k.ID))
				continue
			}
			kept = append(kept, k)
		}
		m.Keys = kept
	}
}

// parseMerchants reads the merchants text into c and returns the
// marketplaces it listed.
func parseMerchants(c *Config, merchants []byte, report func(error)) map[string]bool {
	listed := map[string]bool{}
	err := eachEntry(merchants, func(n int, fields []string) {
		if len(fields) < 2 {
			report(fmt.Errorf("merchants entry %d: want <marketplace> <merchant or prefix*>...", n))
			return
		}
		mp := fields[0]
		m, ok := c.Marketplaces[mp]
		if !ok {
			report(fmt.Errorf("merchants entry %d: marketplace %.64q has no keys", n, mp))
			return
		}
		if listed[mp] {
			// Which line is meant is unknown: the marketplace is dropped
			// rather than given the wider of the two.
			report(fmt.Errorf("merchants entry %d: marketplace %s listed twice", n, mp))
			m.Exact, m.Prefixes = map[string]bool{}, nil
			return
		}
		listed[mp] = true
		if len(fields)-1 > merchantPatternsMax {
			report(fmt.Errorf("merchants entry %d: %d patterns, at most %d", n, len(fields)-1, merchantPatternsMax))
			return
		}
		for _, p := range fields[1:] {
			prefix, isPrefix := strings.CutSuffix(p, "*")
			// A bare "*" (any merchant) is refused: acting for every
			// merchant is exactly what the check exists to prevent.
			if !idPattern.MatchString(prefix) {
				report(fmt.Errorf("merchants entry %d: pattern %.70q: want a merchant id or a non-empty prefix followed by *", n, p))
				continue
			}
			if isPrefix {
				m.Prefixes = append(m.Prefixes, prefix)
			} else {
				m.Exact[prefix] = true
			}
		}
	})
	if err != nil {
		report(fmt.Errorf("merchants: %w", err))
	}
	return listed
}

// pattern is one merchant pattern of one marketplace.
type pattern struct {
	text        string
	prefix      bool
	marketplace string
}

// dropOverlaps removes every merchant pattern that some merchant id would
// match in two marketplaces: equal ids, an id under another's prefix, or
// nested prefixes. Sorted, every string a prefix covers follows it, so one
// pass with a stack of the prefixes still covering the current string finds
// them all (the stack is at most an id's 64 characters deep).
func dropOverlaps(c *Config, report func(error)) {
	var all []pattern
	for id, m := range c.Marketplaces {
		for e := range m.Exact {
			all = append(all, pattern{text: e, marketplace: id})
		}
		for _, p := range m.Prefixes {
			all = append(all, pattern{text: p, prefix: true, marketplace: id})
		}
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].text != all[j].text {
			return all[i].text < all[j].text
		}
		return all[i].prefix && !all[j].prefix // a prefix before an equal exact id
	})
	bad := map[pattern]bool{}
	var covering []pattern
	for i, p := range all {
		for len(covering) > 0 && !strings.HasPrefix(p.text, covering[len(covering)-1].text) {
			covering = covering[:len(covering)-1]
		}
		for _, q := range covering {
			if q.marketplace != p.marketplace {
				bad[p], bad[q] = true, true
			}
		}
		if i > 0 && all[i-1].text == p.text && all[i-1].marketplace != p.marketplace {
			bad[p], bad[all[i-1]] = true, true
		}
		if p.prefix {
			covering = append(covering, p)
		}
	}
	if len(bad) == 0 {
		return
	}
	for p := range bad {
		m := c.Marketplaces[p.marketplace]
		if p.prefix {
			m.Prefixes = slices.DeleteFunc(m.Prefixes, func(s string) bool { return s == p.text })
		} else {
			delete(m.Exact, p.text)
		}
	}
	var names []string
	for p := range bad {
		names = append(names, p.marketplace+":"+p.text)
	}
	sort.Strings(names)
	if len(names) > overlapsReportedMax {
		names = append(names[:overlapsReportedMax], "...")
	}
	report(fmt.Errorf("merchant patterns of two marketplaces overlap: dropped %d (%s)", len(bad), strings.Join(names, " ")))
}

func eachEntry(text []byte, fn func(n int, fields []string)) error {
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
			fn(n, strings.Fields(entry))
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
	k, m, version, err := lc.read()
	if err != nil {
		return nil, err
	}
	c, err := ParseConfig(k, m)
	if err != nil {
		return nil, err
	}
	lc.cur.Store(c)
	lc.version = version
	return lc, nil
}

func (lc *liveConfig) read() (keys, merchants []byte, version string, err error) {
	k, kv, err := lc.keys.read()
	if err != nil {
		return nil, nil, "", fmt.Errorf("ingress keys: %w", err)
	}
	m, mv, err := lc.merchants.read()
	if err != nil {
		return nil, nil, "", fmt.Errorf("ingress merchants: %w", err)
	}
	return k, m, kv + "|" + mv, nil
}

// reload reads the sources and swaps in a new Config if they changed. It
// fails closed: files that cannot be read (deleted, unreadable, too big)
// leave no marketplace configured, and an update with broken entries is
// applied without them (reported), so a key removed from the Secret stops
// working at the next reload whatever else the update got wrong.
func (lc *liveConfig) reload() (changed bool, err error) {
	k, m, version, err := lc.read()
	if err != nil {
		if lc.version != "" {
			lc.cur.Store(&Config{Marketplaces: map[string]*Marketplace{}})
			lc.version = ""
			return true, fmt.Errorf("%w: every marketplace key revoked until the files are back", err)
		}
		return false, err
	}
	if version == lc.version {
		return false, nil
	}
	c, problems := parseConfig(k, m)
	lc.cur.Store(c)
	lc.version = version
	if len(problems) > 0 {
		return true, fmt.Errorf("ingress config applied without %d broken entries: %w", len(problems), errors.Join(problems...))
	}
	return true, nil
}

// get returns the current Config, reloading first when the files may have
// changed. A reload that dropped entries or revoked everything is reported.
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
