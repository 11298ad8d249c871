package recon

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"time"

	"github.com/sebelas/sebelas/internal/money"
)

// Limits of the statement readers. A statement is outside input: every
// line is bounded, and a bad line is skipped and reported, never fatal.
const (
	// lineBytesMax bounds one line; a statement line is ~200 bytes.
	lineBytesMax = 4 << 10
	// LinesMax bounds the data lines of one statement: a festival day of
	// top-ups at 26x is ~3 million; the matching holds them in memory
	// (~250 bytes each).
	LinesMax = 10_000_000
	// skippedKeptMax bounds the bad lines a report lists; all are counted.
	skippedKeptMax = 200
	fieldBytesMax  = 128
)

// LineError is a statement line that was skipped.
type LineError struct {
	Line   int // 1-based, the header is line 1 of a csv
	Reason string
}

func (e LineError) String() string { return fmt.Sprintf("line %d: %s", e.Line, e.Reason) }

// Skipped collects the bad lines of one statement.
type Skipped struct {
	Kept   []LineError
	Total  int
	header bool // the csv header was one of them
}

func (s *Skipped) add(line int, format string, args ...any) {
	s.Total++
	if len(s.Kept) < skippedKeptMax {
		s.Kept = append(s.Kept, LineError{Line: line, Reason: fmt.Sprintf(format, args...)})
	}
}

// dataLines is how many skipped lines were data lines of a csv (the
// header is line 1).
func (s *Skipped) dataLines() int {
	if s.header {
		return s.Total - 1
	}
	return s.Total
}

// eachLine calls fn with every line of r (without its end of line, CRLF
// taken too) and its number. A line longer than lineBytesMax is skipped and
// reported; so are empty lines. Only a read error stops it.
func eachLine(r io.Reader, sk *Skipped, fn func(n int, line []byte)) error {
	br := bufio.NewReaderSize(r, lineBytesMax+2)
	for n := 1; ; n++ {
		line, err := br.ReadSlice('\n')
		tooLong := false
		for errors.Is(err, bufio.ErrBufferFull) {
			tooLong = true
			_, err = br.ReadSlice('\n')
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		atEOF := errors.Is(err, io.EOF)
		if atEOF && len(line) == 0 && !tooLong {
			return nil
		}
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		switch {
		case tooLong:
			sk.add(n, "longer than %d bytes", lineBytesMax)
		case len(line) == 0:
			sk.add(n, "empty line")
		case n > LinesMax+1:
			sk.add(n, "beyond %d lines", LinesMax)
		default:
			fn(n, line)
		}
		if atEOF {
			return nil
		}
	}
}

// csvLines reads a csv statement: the first line must be exactly header;
// every other line is one record of len(header) fields, no field spanning
// lines. fn gets the fields of each good line.
func csvLines(r io.Reader, header []string, sk *Skipped, fn func(n int, fields []string) error) error {
	sawHeader := false
	return eachLine(r, sk, func(n int, line []byte) {
		if sk.header {
			// Columns in another order would read one field as another:
			// without the right header no line is trusted.
			sk.add(n, "after a bad header")
			return
		}
		cr := csv.NewReader(bytes.NewReader(line))
		cr.FieldsPerRecord = len(header)
		fields, err := cr.Read()
		if err != nil {
			if !sawHeader {
				sawHeader = true // a broken header: every line is suspect, but keep going
				sk.header = true
				sk.add(n, "header: %v", err)
				return
			}
			sk.add(n, "csv: %v", err)
			return
		}
		if !sawHeader {
			sawHeader = true
			for i, h := range header {
				if fields[i] != h {
					sk.header = true
					sk.add(n, "header %q, want %q", fields[i], h)
					return
				}
			}
			return
		}
		if _, err := cr.Read(); !errors.Is(err, io.EOF) {
			sk.add(n, "more than one record on the line")
			return
		}
		for i, f := range fields {
			if len(f) > fieldBytesMax {
				sk.add(n, "%s longer than %d bytes", header[i], fieldBytesMax)
				return
			}
		}
		if err := fn(n, fields); err != nil {
			sk.add(n, "%v", err)
		}
	})
}

// jsonLine decodes one JSON object into v strictly: no unknown keys, no
// trailing data.
func jsonLine(line []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("json: %v", err)
	}
	if dec.More() {
		return errors.New("json: data after the object")
	}
	return nil
}

var (
	idPattern   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$`)
	codePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
	refPattern  = regexp.MustCompile(`^[!-~]{1,128}$`)
)

func checkID(what, v string) error {
	if !idPattern.MatchString(v) {
		return fmt.Errorf("%s %.40q is not an id", what, v)
	}
	return nil
}

// parseMinor reads a positive amount in minor units.
func parseMinor(what, v string) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 || n > money.AmountMinorMax || strconv.FormatInt(n, 10) != v {
		return 0, fmt.Errorf("%s %.40q: want a positive integer of minor units up to %d", what, v, int64(money.AmountMinorMax))
	}
	return n, nil
}

func checkAmount(what string, n int64) error {
	if n <= 0 || n > money.AmountMinorMax {
		return fmt.Errorf("%s %d: want 1..%d minor units", what, n, int64(money.AmountMinorMax))
	}
	return nil
}

func checkCurrency(v string) error {
	if _, err := money.ParseCurrency(v); err != nil {
		return fmt.Errorf("currency %.8q: %v", v, err)
	}
	return nil
}

func parseTime(what, v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %.40q is not RFC 3339", what, v)
	}
	return t.UTC(), nil
}
