package qr

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/sigurn/crc16"
)

// Limits of a payload (EMVCo MPM 1.1 §4.5: a data object's length is two
// decimal digits, so a value is at most 99 characters; a code is at most 512
// characters).
const (
	payloadBytesMax = 512
	valueBytesMax   = 99
	// fieldsMax bounds one level of a payload: 100 ids exist (00..99), and
	// each may appear once.
	fieldsMax = 100
	// crcTag and crcHeader start the checksum object, always the last
	// one: "6304" + four hex digits. The CRC covers the payload up to and
	// including crcHeader.
	crcTag    = "63"
	crcHeader = "6304"
)

// crcTable is CRC-16/CCITT-FALSE: polynomial 0x1021, initial value 0xFFFF,
// no reflection, no final XOR — the checksum EMVCo MPM §4.7.3 specifies.
var crcTable = crc16.MakeTable(crc16.CRC16_CCITT_FALSE)

// checksum is the four upper-case hex digits of the CRC of s.
func checksum(s string) string {
	return fmt.Sprintf("%04X", crc16.Checksum([]byte(s), crcTable))
}

// Field is one data object: a two-digit id and its value. Templates
// (merchant account information, additional data, unreserved) hold their
// own fields in the value; Sub decodes them.
type Field struct {
	ID    string
	Value string
}

// decodeFields splits s into data objects. Ids are two ASCII digits, lengths
// two ASCII digits from 01 to 99, values printable; an id may appear once.
func decodeFields(s string) ([]Field, error) {
	var out []Field
	seen := [100]bool{}
	for pos := 0; pos < len(s); {
		if len(out) == fieldsMax {
			return nil, malformed("more than %d data objects", fieldsMax)
		}
		if len(s)-pos < 4 {
			return nil, malformed("truncated data object at offset %d", pos)
		}
		id, length := s[pos:pos+2], s[pos+2:pos+4]
		n, ok := twoDigits(id)
		if !ok {
			return nil, malformed("id %q at offset %d is not two digits", id, pos)
		}
		size, ok := twoDigits(length)
		if !ok || size == 0 {
			return nil, malformed("length %q of id %s is not 01..99", length, id)
		}
		pos += 4
		if len(s)-pos < size {
			return nil, malformed("id %s says %d characters, %d left", id, size, len(s)-pos)
		}
		value := s[pos : pos+size]
		if !printable(value) {
			return nil, malformed("id %s has a character outside printable ASCII", id)
		}
		if seen[n] {
			return nil, malformed("id %s appears twice", id)
		}
		seen[n] = true
		out = append(out, Field{ID: id, Value: value})
		pos += size
	}
	return out, nil
}

// encodeFields writes fields in order. A value of 1..99 printable
// characters is the caller's duty (Make validates its inputs first), so a
// violation is a programmer error.
func encodeFields(fields []Field) string {
	var b strings.Builder
	for _, f := range fields {
		if _, ok := twoDigits(f.ID); !ok || len(f.Value) == 0 || len(f.Value) > valueBytesMax || !printable(f.Value) {
			panic(fmt.Sprintf("qr: cannot encode id %q with a value of %d bytes", f.ID, len(f.Value)))
		}
		b.WriteString(f.ID)
		b.WriteString(fmt.Sprintf("%02d", len(f.Value)))
		b.WriteString(f.Value)
	}
	return b.String()
}

func twoDigits(s string) (int, bool) {
	if len(s) != 2 || s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' {
		return 0, false
	}
	n, _ := strconv.Atoi(s)
	return n, true
}

// printable is EMVCo's "ans" character set as the markets use it: printable
// ASCII. Merchant names in local scripts go in the language template (64),
// which this package does not decode.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// lookup returns the value of id in fields.
func lookup(fields []Field, id string) (string, bool) {
	for _, f := range fields {
		if f.ID == id {
			return f.Value, true
		}
	}
	return "", false
}
