package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// qrCLI runs the built binary without a table: qr make and parse are pure.
func qrCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(cliBinary, args...).Output()
	return string(out), err
}

// crc16CCITT is CRC-16/CCITT-FALSE bit by bit, to re-seal payloads the
// test alters.
func crc16CCITT(s string) string {
	crc := uint16(0xFFFF)
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return fmt.Sprintf("%04X", crc)
}

// TestQRMakeParse makes a code of four schemes with the binary, parses it
// back with the binary, and checks what the app would be shown.
func TestQRMakeParse(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want map[string]any
	}{
		{"QRIS static", []string{"--market", "ID", "--merchant", "ID1020021181745", "--name", "WARUNG BU SRI", "--city", "JAKARTA", "--tip", "prompt"},
			map[string]any{"scheme": "QRIS", "market": "ID", "currency": "IDR", "merchant_id": "qris:ID1020021181745", "merchant_ref": "ID1020021181745",
				"name": "WARUNG BU SRI", "city": "JAKARTA", "mcc": "5411", "dynamic": false, "tip": "prompt"}},
		{"QR Ph with a fixed fee", []string{"--market", "PH", "--acquirer", "BNORPHMMXXX", "--merchant", "MCH1", "--name", "SARI SARI", "--city", "MANILA", "--tip", "fixed:5.00"},
			map[string]any{"scheme": "QRPH", "layout_approximated": true, "market": "PH", "currency": "PHP", "merchant_id": "qrph:MCH1", "merchant_ref": "MCH1", "acquirer": "BNORPHMMXXX",
				"name": "SARI SARI", "city": "MANILA", "mcc": "5411", "dynamic": false, "tip": "fixed", "fee_fixed": 500.0}},
		{"DuitNow dynamic", []string{"--market", "MY", "--acquirer", "890053", "--merchant", "M0001", "--name", "NASI LEMAK", "--city", "KL", "--mcc", "5814",
			"--amount", "12.50", "--dynamic", "--reference", "ORD-7", "--expires-in", "10m", "--tip", "percent:1.5"},
			map[string]any{"scheme": "DUITNOW", "layout_approximated": true, "market": "MY", "currency": "MYR", "merchant_id": "duitnow:M0001", "merchant_ref": "M0001", "acquirer": "890053",
				"name": "NASI LEMAK", "city": "KL", "mcc": "5814", "dynamic": true, "amount": 1250.0, "reference": "ORD-7", "tip": "percent", "fee_basis_points": 150.0}},
		{"PromptPay with an amount", []string{"--market", "TH", "--merchant", "010556612345601", "--name", "KHAO MAN GAI", "--city", "BANGKOK", "--amount", "150"},
			map[string]any{"scheme": "PROMPTPAY", "market": "TH", "currency": "THB", "merchant_id": "promptpay:010556612345601", "merchant_ref": "010556612345601",
				"name": "KHAO MAN GAI", "city": "BANGKOK", "mcc": "5411", "dynamic": false, "amount": 15000.0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			payload, err := qrCLI(t, append([]string{"qr", "make"}, tt.args...)...)
			if err != nil {
				t.Fatalf("qr make: %v", err)
			}
			out, err := qrCLI(t, "qr", "parse", strings.TrimSpace(payload))
			if err != nil {
				t.Fatalf("qr parse: %v\n%s", err, out)
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatal(err)
			}
			delete(got, "expires_at") // relative to the clock; its presence is checked below
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parsed (-want +got):\n%s", diff)
			}
			if dynamic := tt.want["dynamic"] == true; dynamic != strings.Contains(out, `"expires_at"`) {
				t.Errorf("expires_at shown %v, want %v", !dynamic, dynamic)
			}
		})
	}
}

// TestQRParseRefuses runs qr parse on a damaged and a cross-market payload:
// exit status 1 and the reason and message the app would show.
func TestQRParseRefuses(t *testing.T) {
	payload, err := qrCLI(t, "qr", "make", "--market", "ID", "--merchant", "ID1020021181745", "--name", "W", "--city", "J")
	if err != nil {
		t.Fatal(err)
	}
	payload = strings.TrimSpace(payload)
	body := payload[:len(payload)-4]
	pesos := strings.Replace(body, "5303360", "5303608", 1)
	tests := []struct {
		name, payload, reason string
	}{
		{"one digit of the checksum changed", body + map[bool]string{true: "0000", false: "FFFF"}[payload[len(body):] != "0000"], "qr_checksum"},
		{"an Indonesian code asking for pesos, re-sealed", pesos + crc16CCITT(pesos), "qr_currency_mismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := qrCLI(t, "qr", "parse", tt.payload)
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("exit: %v, want status 1", err)
			}
			var got qrRefusal
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			if diff := cmp.Diff(tt.reason, got.Reason); diff != "" {
				t.Errorf("reason (-want +got):\n%s", diff)
			}
			if got.Message == "" || got.Message == "This QR code cannot be paid." {
				t.Errorf("no specific message for the app: %q", got.Message)
			}
		})
	}
}
