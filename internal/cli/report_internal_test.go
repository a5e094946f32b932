package cli

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/scanner"
	"github.com/vigil-sec/vigil/scanner/format"
)

// TestReportGateIsTheDecision checks that the gate the reports print is
// ci's decision unchanged: its JSON is the decision's, byte for byte, with
// every reason field set (filled by reflection, so a field added to
// ci.Reason is covered), and nil and empty reasons stay apart.
func TestReportGateIsTheDecision(t *testing.T) {
	t.Parallel()
	var full ci.Reason
	v := reflect.ValueOf(&full).Elem()
	for i := range v.NumField() {
		switch f := v.Field(i); f.Kind() {
		case reflect.String:
			f.SetString(v.Type().Field(i).Name + "-value")
		case reflect.Int:
			f.SetInt(int64(i + 1))
		default:
			t.Fatalf("ci.Reason.%s is a %s: teach this test to fill it", v.Type().Field(i).Name, f.Kind())
		}
	}
	for _, d := range []*ci.Decision{
		{Decision: ci.Fail, Reasons: []ci.Reason{full, {Code: ci.CodePassed, Message: "m"}}},
		{Decision: ci.Pass, Reasons: []ci.Reason{}},
		{Decision: ci.Pass},
	} {
		want, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		got, err := json.Marshal(reportGate(d))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("reportGate JSON:\n got %s\nwant %s", got, want)
		}
	}
	if g := reportGate(nil); g != nil {
		t.Errorf("reportGate(nil) = %+v, want nil", g)
	}
}

// TestReportsShowTheUnanalysedGate writes ci's decision on a result with
// a part no engine analysed, as `vigil scan` does, and checks the table
// and the JSON name it.
func TestReportsShowTheUnanalysedGate(t *testing.T) {
	t.Parallel()
	res := &scanner.Result{
		Target:     scanner.TargetInfo{Kind: scanner.KindDir, Ref: "."},
		Engines:    []scanner.EngineRun{{ID: "sast", Version: "1"}},
		Unanalysed: []scanner.Unanalysed{{Engine: "sast", Path: "svc", Reason: "go: errors parsing go.mod"}},
	}
	d := ci.Evaluate(res, nil, nil, time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC))

	var table bytes.Buffer
	if err := writeOutput(&table, output{format: format.Table}, res, reportGate(d)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Gate: FAIL", "  - NOT_ANALYSED: sast could not analyse svc, so nothing is known about it: go: errors parsing go.mod\n"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}

	var js bytes.Buffer
	if err := writeOutput(&js, output{format: format.JSON}, res, reportGate(d)); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Gate json.RawMessage `json:"gate"`
	}
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	var got, want ci.Decision
	if err := json.Unmarshal(doc.Gate, &got); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(d)
	_ = json.Unmarshal(b, &want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("JSON gate = %+v, want %+v", got, want)
	}
}
