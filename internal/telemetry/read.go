package telemetry

import (
	"bufio"
	"bytes"
	"io"
	"strconv"
	"strings"
)

// seriesReadMax bounds what Parse reads from one exposition.
const seriesReadMax = 100_000

// Snapshot returns every series of this process and its value, keyed by
// the series as written ("family{label=\"v\",...}"): tests compare two
// snapshots, and the war room reads rates from them.
func Snapshot() map[string]float64 {
	var b bytes.Buffer
	Write(&b)
	s, _ := Parse(&b)
	return s
}

// Parse reads Prometheus text exposition (as Write and any /metrics write
// it): series -> value; comment lines are skipped, and a line it cannot read
// is skipped and counted in the second result.
func Parse(r io.Reader) (map[string]float64, int) {
	out := map[string]float64{}
	bad := 0
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() && len(out) < seriesReadMax {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		// The value is after the last space outside the labels (label
		// values may hold spaces).
		cut := strings.LastIndexByte(line, '}')
		sp := strings.IndexByte(line[max(cut, 0):], ' ')
		if sp < 0 {
			bad++
			continue
		}
		sp += max(cut, 0)
		fields := strings.Fields(line[sp:])
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			bad++
			continue
		}
		out[line[:sp]] = v
	}
	return out, bad
}

// Family returns the family name of a series ("a_total{x=\"1\"}" -> "a_total").
func Family(series string) string {
	if i := strings.IndexByte(series, '{'); i >= 0 {
		return series[:i]
	}
	return series
}
