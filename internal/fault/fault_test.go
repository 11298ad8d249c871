package fault

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestKindReasonStatusThroughWrapping(t *testing.T) {
	base := errors.New("cause")
	tests := []struct {
		name       string
		err        error
		wantKind   Kind
		wantReason string
		wantStatus int
	}{
		{"nil", nil, KindTransient, "internal", http.StatusOK},
		{"plain error is transient", base, KindTransient, "internal", http.StatusServiceUnavailable},
		{"permanent", Permanent("invalid_event", base), KindPermanent, "invalid_event", http.StatusBadRequest},
		{"wrapped permanent", fmt.Errorf("decode: %w", Permanent("invalid_event", base)), KindPermanent, "invalid_event", http.StatusBadRequest},
		{"throttled", Throttled("dynamodb_throttled", base), KindThrottled, "dynamodb_throttled", http.StatusTooManyRequests},
		{"transient", Transient("storage_down", base), KindTransient, "storage_down", http.StatusServiceUnavailable},
		{"too large", TooLarge("body_too_large", base), KindTooLarge, "body_too_large", http.StatusRequestEntityTooLarge},
		{"unsupported", Unsupported("specversion", base), KindUnsupported, "specversion", http.StatusUnsupportedMediaType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := []any{KindOf(tt.err), ReasonOf(tt.err), Status(tt.err)}
			want := []any{tt.wantKind, tt.wantReason, tt.wantStatus}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	if !errors.Is(Permanent("x", base), base) {
		t.Error("Permanent does not unwrap to its cause")
	}
}
