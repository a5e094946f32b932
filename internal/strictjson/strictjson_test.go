package strictjson

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

type inner struct {
	Image string `json:"image"`
}

type Embedded struct {
	Promoted string `json:"promoted"`
}

type doc struct {
	Embedded
	Name    string            `json:"name"`
	Plain   int               // untagged: "Plain"
	Skip    string            `json:"-"`
	Items   []inner           `json:"items"`
	Ptr     *inner            `json:"ptr"`
	Labels  map[string]inner  `json:"labels"`
	Raw     json.RawMessage   `json:"raw"`
	Any     any               `json:"any"`
	When    time.Time         `json:"when"`
	Strings map[string]string `json:"strings"`
}

func TestCheck(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in      string
		refuseUnknown bool
		want          error
		wantPath      string
	}{
		{name: "clean", in: `{"name":"a","Plain":1,"promoted":"p","items":[{"image":"x"}],"ptr":{"image":"y"},"labels":{"A":{"image":"z"},"a":{"image":"z"}},"raw":{"k":1},"any":{"k":[{"k":1}]},"when":"2026-01-02T03:04:05Z"}`, refuseUnknown: true},
		{name: "duplicate top", in: `{"name":"a","name":"b"}`, want: ErrDuplicateKey},
		{name: "duplicate in slice element", in: `{"items":[{"image":"a"},{"image":"a","image":"b"}]}`, want: ErrDuplicateKey, wantPath: "items[1]"},
		{name: "duplicate in pointer", in: `{"ptr":{"image":"a","image":"b"}}`, want: ErrDuplicateKey, wantPath: "ptr"},
		{name: "duplicate map key", in: `{"strings":{"k":"a","k":"b"}}`, want: ErrDuplicateKey, wantPath: "strings"},
		{name: "duplicate in raw message", in: `{"raw":{"spec":{"image":"a","image":"b"}}}`, want: ErrDuplicateKey, wantPath: "raw.spec"},
		{name: "duplicate in interface", in: `{"any":[{"k":1,"k":2}]}`, want: ErrDuplicateKey, wantPath: "any[0]"},
		{name: "duplicate unknown key", in: `{"other":1,"other":2}`, want: ErrDuplicateKey},
		{name: "duplicate after escape", in: `{"name":"a","n\u0061me":"b"}`, want: ErrDuplicateKey},
		{name: "case top", in: `{"Name":"a"}`, want: ErrCaseMismatch},
		{name: "case untagged", in: `{"plain":1}`, want: ErrCaseMismatch},
		{name: "case promoted", in: `{"PROMOTED":"x"}`, want: ErrCaseMismatch},
		{name: "case nested", in: `{"items":[{"Image":"x"}]}`, want: ErrCaseMismatch, wantPath: "items[0]"},
		{name: "case in map value", in: `{"labels":{"k":{"IMAGE":"x"}}}`, want: ErrCaseMismatch, wantPath: "labels.k"},
		{name: "case with unicode folding", in: `{"nam\u212a":"a"}`, want: nil}, // K (Kelvin) folds to k, not to e: unknown
		{name: "case with long s", in: `{"promoted":"p","item\u017f":[]}`, want: ErrCaseMismatch},
		{name: "case mixed with exact", in: `{"name":"a","NAME":"b"}`, want: ErrCaseMismatch},
		{name: "case even when unknown allowed", in: `{"Name":"a"}`, refuseUnknown: false, want: ErrCaseMismatch},
		{name: "unknown allowed", in: `{"other":1}`},
		{name: "unknown refused", in: `{"other":1}`, refuseUnknown: true, want: ErrUnknownField},
		{name: "skipped field is unknown", in: `{"Skip":"x"}`, refuseUnknown: true, want: ErrUnknownField},
		{name: "unknown nested refused", in: `{"items":[{"image":"a","tag":"b"}]}`, refuseUnknown: true, want: ErrUnknownField, wantPath: "items[0]"},
		{name: "map keys any case", in: `{"labels":{"Image":{"image":"x"}}}`, refuseUnknown: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var d doc
			err := Check([]byte(tc.in), &d, tc.refuseUnknown)
			if !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) {
				t.Fatalf("Check(%s) = %v, want %v", tc.in, err, tc.want)
			}
			if ke, ok := errors.AsType[*KeyError](err); ok && ke.Path != tc.wantPath {
				t.Errorf("path = %q, want %q", ke.Path, tc.wantPath)
			}
		})
	}
}

func TestUnmarshalRefusesWhatEncodingJSONAccepts(t *testing.T) {
	t.Parallel()
	// What encoding/json makes of these is what the strict reader refuses.
	for _, in := range []string{`{"name":"a","name":"b"}`, `{"NAME":"b"}`, `{"items":[{"image":"a","Image":"b"}]}`} {
		var loose, strict doc
		if err := json.Unmarshal([]byte(in), &loose); err != nil {
			t.Fatalf("encoding/json refuses %s: %v", in, err)
		}
		if err := Unmarshal([]byte(in), &strict); err == nil {
			t.Errorf("Unmarshal(%s) = nil, want an error", in)
		}
		if err := UnmarshalKnown([]byte(in), &strict); err == nil {
			t.Errorf("UnmarshalKnown(%s) = nil, want an error", in)
		}
	}
}

func TestUnmarshal(t *testing.T) {
	t.Parallel()
	var d doc
	if err := Unmarshal([]byte(`{"name":"a","other":1,"items":[{"image":"x"}]}`), &d); err != nil || d.Name != "a" || d.Items[0].Image != "x" {
		t.Fatalf("Unmarshal = %v, %+v", err, d)
	}
	if err := UnmarshalKnown([]byte(`{"name":"a","other":1}`), &d); !errors.Is(err, ErrUnknownField) {
		t.Errorf("UnmarshalKnown with an unknown field = %v", err)
	}
	if err := UnmarshalKnown([]byte(`{"name":"a"} {}`), &d); !errors.Is(err, ErrTrailingData) {
		t.Errorf("UnmarshalKnown with trailing data = %v", err)
	}
	if err := UnmarshalKnown([]byte(`{"name":"a"}}`), &d); err == nil {
		t.Errorf("UnmarshalKnown with a trailing brace = nil")
	}
	var syn *json.SyntaxError
	if err := Unmarshal([]byte(`{"name":`), &d); err == nil || (!errors.As(err, &syn) && err.Error() != "unexpected EOF") {
		t.Errorf("Unmarshal of a cut value = %v", err)
	}
	ke := &KeyError{Err: ErrCaseMismatch, Path: "request", Key: "UID", Want: "uid"}
	if got, want := ke.Error(), `unknown field "UID" in request: field names are case-sensitive; did you mean "uid"?`; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
}
