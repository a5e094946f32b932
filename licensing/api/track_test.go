package api_test

import (
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/licensing"
)

// TestTrackAmount: track takes 1 to MaxTrackAmount (0 or no body meaning
// 1); anything else is a 400 INVALID_FIELD naming amount that changes
// nothing (the nonce stays the last one); the total saturates instead of
// overflowing into a 500.
func TestTrackAmount(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := setup(t, dialect)
		ce := e.entitle(licensing.NewEntitlement{Features: map[string]licensing.Feature{"export": {Kind: licensing.FeatureBoolean}}})
		s := e.mustActivate(ce.ActivationCode, "laptop")
		const path = "/api/v1/activation/features/export/track"
		tracked := func(res response) int64 {
			t.Helper()
			if res.status != http.StatusOK {
				t.Fatalf("track: %d %s", res.status, res.body)
			}
			var u licensing.FeatureUsage
			res.json(t, &u)
			return u.Tracked
		}
		if got := tracked(e.call(s, "POST", path, "", nil)); got != 1 {
			t.Errorf("no body: tracked %d, want 1", got)
		}
		if got := tracked(e.call(s, "POST", path, "", json.RawMessage(`{"amount": 0}`))); got != 2 {
			t.Errorf("amount 0: tracked %d, want 2", got)
		}
		if got := tracked(e.call(s, "POST", path, "", map[string]int64{"amount": licensing.MaxTrackAmount})); got != 2+licensing.MaxTrackAmount {
			t.Errorf("amount max: tracked %d", got)
		}

		for _, body := range []string{
			`{"amount": -1}`, `{"amount": -9223372036854775808}`, `{"amount": 1000001}`,
			`{"amount": 9223372036854775807}`, `{"amount": 1e30}`, `{"amount": 99999999999999999999}`,
			`{"amount": "5"}`, `{"amount": 1.5}`,
		} {
			nonce := s.nonce
			res := e.call(s, "POST", path, "", json.RawMessage(body))
			if res.status != http.StatusBadRequest || res.code(t) != licensing.CodeInvalidField || !strings.Contains(string(res.body), "amount") {
				t.Errorf("%s: %d %s, want 400 INVALID_FIELD naming amount", body, res.status, res.body)
			}
			if s.nonce != nonce {
				t.Errorf("%s: the refusal issued a new nonce", body)
			}
		}
		// Nothing was counted, and the last nonce still works.
		if got := tracked(e.call(s, "POST", path, "", nil)); got != 3+licensing.MaxTrackAmount {
			t.Errorf("after the refusals: tracked %d, want %d", got, 3+licensing.MaxTrackAmount)
		}

		// Near the top of int64 the total saturates.
		if _, err := e.db.SQL().ExecContext(t.Context(), "UPDATE licensing_feature_usage SET tracked = 9223372036854775000"); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if got := tracked(e.call(s, "POST", path, "", map[string]int64{"amount": licensing.MaxTrackAmount})); got != math.MaxInt64 {
				t.Errorf("tracked near the top: %d, want %d", got, int64(math.MaxInt64))
			}
		}
	})
}
