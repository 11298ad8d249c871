// Package redact masks personal identifiers before they reach a log line.
// Logs leave the payment core (log shipping, support tickets, screenshots),
// so a wallet id or a phone number in them is personal data outside the
// table's access control. A masked value keeps enough to tell two values
// apart by eye and to find the full one in the table (by the business id
// logged beside it), never enough to take over or call someone.
//
// Use it in every log attribute that names a wallet or a phone number:
//
//	log.Info("charge", "charge_id", id, "payer", redact.Wallet(wallet))
//
// Masking is deterministic and needs no key: a keyed hash would let logs be
// joined across services, which is the very thing masking is against.
package redact

import "strings"

// mask is what replaces the hidden part; always four characters, so the
// masked form does not tell the length of what it hides.
const mask = "****"

// walletKeepMax is the most characters kept at each end of a wallet id.
// Ids are at most 64 characters (events' id pattern); a UUID keeps 4+4 of its
// 32 hex digits, far from enough to guess the rest.
const walletKeepMax = 4

// Wallet masks a wallet id: a quarter of it, at most four characters, at
// each end stays; the middle becomes ****. Ids of up to three characters
// are masked whole.
func Wallet(id string) string {
	id = printable(id)
	k := min(len(id)/4, walletKeepMax)
	if k == 0 {
		return mask
	}
	return id[:k] + mask + id[len(id)-k:]
}

// msisdnDigitsMin: shorter digit strings are not phone numbers; mask whole.
const msisdnDigitsMin = 7

// MSISDN masks a phone number however it was typed: a leading '+', up to
// three leading digits (country code or trunk prefix, which support needs
// to route a complaint) and up to two trailing digits stay, always fewer
// than half of the digits; everything else becomes ****. Separators are
// dropped. Anything with fewer than seven digits is masked whole.
func MSISDN(raw string) string {
	var digits strings.Builder
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c >= '0' && c <= '9' {
			digits.WriteByte(c)
		}
	}
	d := digits.String()
	if len(d) < msisdnDigitsMin {
		return mask
	}
	plus := ""
	if strings.HasPrefix(strings.TrimSpace(raw), "+") {
		plus = "+"
	}
	lead, tail := min(3, len(d)/4), min(2, len(d)/5)
	return plus + d[:lead] + mask + d[len(d)-tail:]
}

// printable replaces bytes outside printable ASCII by '?': a wallet id from
// a malformed event must not forge log lines or terminal escapes.
func printable(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] < 0x20 || b[j] > 0x7e {
					b[j] = '?'
				}
			}
			return string(b)
		}
	}
	return s
}
