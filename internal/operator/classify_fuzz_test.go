package operator

import (
	"encoding/json"
	"net/http"
	"testing"
)

// FuzzClassify feeds arbitrary answers of the aggregator, a partner on the
// internet, to classify. It must never panic, and must never report a
// verdict the answer does not state: Succeeded only for a 2xx whose body
// says "succeeded" for this reference (or none), Failed only when the body
// says "failed", a code and a receipt only of their patterns.
func FuzzClassify(f *testing.F) {
	for _, seed := range []struct {
		status int
		body   string
		query  bool
	}{
		{200, `{"reference":"tx-1","status":"succeeded","operator_ref":"TSEL-123"}`, false},
		{200, `{"reference":"tx-2","status":"succeeded"}`, false},
		{202, `{"reference":"tx-1","status":"pending"}`, false},
		{422, `{"reference":"tx-1","status":"failed","code":"ported_number"}`, false},
		{404, `{"code":"not_found"}`, true},
		{409, `{"reference":"tx-1","status":"succeeded"}`, false},
		{504, ``, false},
		{200, `{"status":"succeeded"}{"status":"failed"}`, false},
		{200, `{"status":"SUCCEEDED"}`, false},
		{200, `{"reference":"tx-1","status":"failed","code":"<script>","operator_ref":"a b"}`, false},
		{200, `null`, false},
		{500, `{"status":"failed"}`, true},
	} {
		f.Add(seed.status, []byte(seed.body), seed.query)
	}
	f.Fuzz(func(t *testing.T, status int, body []byte, statusQuery bool) {
		if status < 100 || status > 599 {
			return // net/http never hands these over
		}
		r := classify(status, body, "tx-1", statusQuery)
		var w wireResult
		_ = json.Unmarshal(body, &w) // what the body says, if anything
		switch r.Outcome {
		case Succeeded:
			if status < 200 || status >= 300 || w.Status != "succeeded" || (w.Reference != "" && w.Reference != "tx-1") {
				t.Fatalf("Succeeded from %d %q", status, body)
			}
		case Failed:
			if w.Status != "failed" || status == http.StatusConflict {
				t.Fatalf("Failed from %d %q", status, body)
			}
		}
		if r.Code != "" && !codePattern.MatchString(r.Code) {
			t.Fatalf("code %q outside its pattern", r.Code)
		}
		if r.OperatorRef != "" && !operatorRefPattern.MatchString(r.OperatorRef) {
			t.Fatalf("operator ref %q outside its pattern", r.OperatorRef)
		}
	})
}
