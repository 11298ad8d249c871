package recon_test

import (
	"bytes"
	"testing"

	"github.com/sebelas/sebelas/internal/operator"
	"github.com/sebelas/sebelas/internal/recon"
)

// The statement readers take outside input: whatever the bytes, they
// return, never panic, and account for every line as read or skipped.
func FuzzReadTopupStatement(f *testing.F) {
	f.Add([]byte("reference,operator_ref,operator,kind,product,face_value,currency,status,code,received_at\ntu-1,SIM-1,telkomsel,airtime,,10000,IDR,succeeded,,2026-11-11T01:00:00Z\n"), true)
	f.Add([]byte(`{"reference":"tu-1","operator_ref":"","operator":"globe","kind":"data","product":"p-1","face_value":5000,"currency":"PHP","status":"failed","code":"expired","received_at":"2026-11-11T01:00:00Z"}`+"\n{}\n"), false)
	f.Add([]byte("\"unterminated\n\r\n,,,\n"), true)
	f.Fuzz(func(t *testing.T, data []byte, csv bool) {
		format := operator.StatementFormatJSONL
		if csv {
			format = operator.StatementFormatCSV
		}
		st, err := recon.ReadTopupStatement(bytes.NewReader(data), format)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Lines) > st.Read {
			t.Fatalf("%d good lines of %d read", len(st.Lines), st.Read)
		}
		for _, l := range st.Lines {
			if l.FaceValue <= 0 || l.Reference == "" {
				t.Fatalf("accepted %+v", l)
			}
		}
	})
}

func FuzzReadCashInStatement(f *testing.F) {
	f.Add([]byte("bank_ref,cashin_id,amount,currency,booked_at\nB-1,k-1,100,IDR,2026-11-11T01:00:00Z\n"))
	f.Add([]byte("bank_ref,cashin_id\nB-1,k-1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := recon.ReadCashInStatement(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range st.Lines {
			if l.Amount <= 0 || l.CashInID == "" {
				t.Fatalf("accepted %+v", l)
			}
		}
	})
}
