package httpx_test

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/internal/httpx"
)

func TestLimitParam(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		query string
		want  int
		bad   bool
	}{
		{"", 0, false}, {"limit=1", 1, false}, {"limit=50", 50, false},
		{"limit=0", 0, true}, {"limit=51", 0, true}, {"limit=x", 0, true}, {"limit=-1", 0, true},
	} {
		got, err := httpx.LimitParam(httptest.NewRequest("GET", "/?"+tc.query, nil), 50)
		var he *httpx.Error
		if got != tc.want || (err != nil) != tc.bad || (tc.bad && (!errors.As(err, &he) || he.Status != 400 || !strings.Contains(he.Message, "limit"))) {
			t.Errorf("%q: %d %v, want %d (error %v)", tc.query, got, err, tc.want, tc.bad)
		}
	}
}

func TestSafeMessage(t *testing.T) {
	t.Parallel()
	notFound := errors.New("not found")
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("project %q: %w", "x", notFound), `project "x": not found`},
		{fmt.Errorf("store: get project: SELECT … : %w", notFound), "not found"},
		{fmt.Errorf("%s: %w", strings.Repeat("x", 400), notFound), "not found"},
		{errors.New("store: connection refused"), "internal error"},
	} {
		if got := httpx.SafeMessage(tc.err, errors.New("other"), notFound); got != tc.want {
			t.Errorf("SafeMessage(%q) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
