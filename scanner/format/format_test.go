package format_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-sec/vigil/internal/schematest"
	"github.com/vigil-sec/vigil/scanner"
	"github.com/vigil-sec/vigil/scanner/format"
)

// result is a scan result with one finding of each kind the SARIF writer
// treats differently: plain, suppressed in source, waived, unchanged.
func result() *scanner.Result {
	return &scanner.Result{
		Target:     scanner.TargetInfo{Kind: scanner.KindGit, Ref: "https://example.com/org/repo.git", Commit: strings.Repeat("a", 40)},
		StartedAt:  time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC),
		FinishedAt: time.Date(2026, 11, 29, 10, 0, 5, 0, time.UTC),
		Engines:    []scanner.EngineRun{{ID: "sast", Version: "v2.30.0", Seconds: 1.5}},
		Findings: []scanner.Finding{
			{Engine: "sast", RuleID: "G404", Message: "Use of weak random number generator", CWE: "CWE-338",
				Severity: scanner.LevelHigh, Confidence: scanner.LevelMedium, File: "cmd/main.go", Line: 12, Column: 7,
				Snippet: "rand.Intn(10)", Fingerprint: "fp1", Status: scanner.StatusNew},
			{Engine: "sast", RuleID: "G401", Message: "Use of weak cryptographic primitive", CWE: "CWE-328",
				Severity: scanner.LevelMedium, Confidence: scanner.LevelHigh, File: "pkg/h.go", Line: 3, EndLine: 5, Column: 2,
				Fingerprint: "fp2", Suppressed: true, Status: scanner.StatusUnchanged,
				Suppressions: []scanner.Suppression{{Kind: scanner.SuppressionInSource, Justification: "legacy checksum"}}},
			{Engine: "sast", RuleID: "G404", Message: "Use of weak random number generator", CWE: "CWE-338",
				Severity: scanner.LevelHigh, Confidence: scanner.LevelMedium, File: "cmd/other.go", Line: 4, Column: 1,
				Fingerprint: "fp3", Suppressed: true, Status: scanner.StatusNew,
				Suppressions: []scanner.Suppression{{Kind: scanner.SuppressionExternal, Justification: "not for secrets", Owner: "sec@example.com", Expires: "2026-12-31"}}},
		},
	}
}

func TestSARIFIsValidAndCarriesFingerprintsSuppressionsBaseline(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if err := format.Write(&buf, format.SARIF, result(), nil); err != nil {
		t.Fatal(err)
	}
	schematest.Validate(t, schematest.SARIF210, buf.Bytes())

	var doc struct {
		Version string `json:"version"`
		Runs    []struct {
			AutomationDetails struct{ ID string } `json:"automationDetails"`
			Tool              struct {
				Driver struct {
					Name  string
					Rules []struct{ ID string }
				}
			}
			VersionControlProvenance []struct {
				RevisionID string `json:"revisionId"`
			} `json:"versionControlProvenance"`
			Results []struct {
				RuleID              string            `json:"ruleId"`
				RuleIndex           int               `json:"ruleIndex"`
				Level               string            `json:"level"`
				BaselineState       string            `json:"baselineState"`
				PartialFingerprints map[string]string `json:"partialFingerprints"`
				Suppressions        []struct {
					Kind          string `json:"kind"`
					Justification string `json:"justification"`
				} `json:"suppressions"`
			}
		}
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Version != "2.1.0" || len(doc.Runs) != 1 {
		t.Fatalf("version %q, %d runs; want 2.1.0 and one run", doc.Version, len(doc.Runs))
	}
	run := doc.Runs[0]
	if run.AutomationDetails.ID != "vigil/git/" {
		t.Errorf("automationDetails.id = %q", run.AutomationDetails.ID)
	}
	if len(run.VersionControlProvenance) != 1 || run.VersionControlProvenance[0].RevisionID != strings.Repeat("a", 40) {
		t.Errorf("versionControlProvenance = %+v", run.VersionControlProvenance)
	}
	var rules []string
	for _, r := range run.Tool.Driver.Rules {
		rules = append(rules, r.ID)
	}
	if diff := cmp.Diff(rules, []string{"G404", "G401"}); diff != "" {
		t.Errorf("rules (-got +want):\n%s", diff)
	}
	type res struct {
		Rule, Level, Baseline, FP, Suppression string
		Index                                  int
	}
	var got []res
	for _, r := range run.Results {
		s := ""
		for _, sup := range r.Suppressions {
			s += sup.Kind + ":" + sup.Justification
		}
		got = append(got, res{r.RuleID, r.Level, r.BaselineState, r.PartialFingerprints[scanner.FingerprintKey], s, r.RuleIndex})
	}
	want := []res{
		{"G404", "error", "new", "fp1", "", 0},
		{"G401", "warning", "unchanged", "fp2", "inSource:legacy checksum", 1},
		{"G404", "error", "new", "fp3", "external:not for secrets", 0},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("results (-got +want):\n%s", diff)
	}
}

// TestSARIFOfAnSCPLikeRemote checks that a repository named the scp way
// (git@host:org/repo.git) is written as the ssh URL git reads the same
// way: SARIF wants a URI there, and the scp form is none.
func TestSARIFOfAnSCPLikeRemote(t *testing.T) {
	t.Parallel()
	res := result()
	res.Target.Ref = "git@git.example.com:org/repo.git"
	var buf bytes.Buffer
	if err := format.Write(&buf, format.SARIF, res, nil); err != nil {
		t.Fatal(err)
	}
	schematest.Validate(t, schematest.SARIF210, buf.Bytes())
	if want := `"repositoryUri": "ssh://git@git.example.com/org/repo.git"`; !strings.Contains(buf.String(), want) {
		t.Errorf("SARIF lacks %s", want)
	}
	for in, want := range map[string]string{
		"https://example.com/org/repo.git": "https://example.com/org/repo.git",
		"git@host:/srv/repo.git":           "ssh://git@host/srv/repo.git",
		"/tmp/local":                       "/tmp/local",
	} {
		if got := format.RepositoryURI(in); got != want {
			t.Errorf("RepositoryURI(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestJSONHasTheDocumentedFields(t *testing.T) {
	t.Parallel()
	res := result()
	res.SBOM = &scanner.SBOM{Components: []scanner.Component{{Name: "golang.org/x/text", Version: "v0.3.0", Type: "go-module"}}}
	gate := &format.Gate{Decision: "fail", Reasons: []format.GateReason{{Code: "FINDING", Message: "G404 high/medium at cmd/main.go:12"}}}
	var buf bytes.Buffer
	if err := format.Write(&buf, format.JSON, res, gate); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"target", "findings", "sbom", "gate", "engines", "started_at", "finished_at"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	f := doc["findings"].([]any)[0].(map[string]any)
	for _, k := range []string{"rule_id", "severity", "confidence", "cwe", "file", "line", "fingerprint", "suppressed", "status"} {
		if _, ok := f[k]; !ok {
			t.Errorf("finding lacks %q", k)
		}
	}
	if f["severity"] != "high" || f["status"] != "new" {
		t.Errorf("finding severity/status = %v/%v", f["severity"], f["status"])
	}
	if c := doc["sbom"].(map[string]any)["components"].([]any); len(c) != 1 {
		t.Errorf("sbom.components = %v", c)
	}
	g := doc["gate"].(map[string]any)
	if g["decision"] != "fail" || len(g["reasons"].([]any)) != 1 {
		t.Errorf("gate = %v", g)
	}
}

func TestTableNamesFindingsAndGate(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	gate := &format.Gate{Decision: "fail", Reasons: []format.GateReason{{Code: "FINDING", Message: "G404 at cmd/main.go:12"}}}
	if err := format.Write(&buf, format.Table, result(), gate); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"Findings: 3 (2 suppressed)", "cmd/main.go:12:7", "nosec", "waived", "unchanged", "Gate: FAIL", "FINDING: G404 at cmd/main.go:12"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestSBOMFormatsNeedAnSBOM(t *testing.T) {
	t.Parallel()
	for _, f := range []format.Format{format.CycloneDXJSON, format.CycloneDXXML, format.SPDXJSON} {
		err := format.Write(&bytes.Buffer{}, f, result(), nil)
		if !errors.Is(err, scanner.ErrUsage) || !strings.Contains(err.Error(), "sbom engine") {
			t.Errorf("Write(%s) without an SBOM: %v, want a usage error naming the sbom engine", f, err)
		}
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	for _, f := range format.All {
		if got, err := format.Parse(string(f)); err != nil || got != f {
			t.Errorf("Parse(%q) = %q, %v", f, got, err)
		}
	}
	if _, err := format.Parse("yaml"); !errors.Is(err, scanner.ErrUsage) || !strings.Contains(err.Error(), `"yaml"`) {
		t.Errorf("Parse(yaml) = %v, want a usage error naming it", err)
	}
}

// TestUnanalysedPartsInEveryFormat checks that a part of the target that
// was not analysed is named in the table, Vigil's JSON and SARIF (as a
// failed invocation's error notification), so that no output reads as a
// clean scan of it.
func TestUnanalysedPartsInEveryFormat(t *testing.T) {
	t.Parallel()
	res := result()
	res.Unanalysed = []scanner.Unanalysed{{Engine: "sast", Path: "svc", Reason: "go: errors parsing go.mod:\nsvc/go.mod:3: unexpected newline"}}
	// The gate as ci decides it (internal/cli tests the two together).
	gate := &format.Gate{Decision: "fail", Reasons: []format.GateReason{{
		Code:    scanner.CodeNotAnalysed,
		Message: "sast could not analyse svc, so nothing is known about it: go: errors parsing go.mod:\nsvc/go.mod:3: unexpected newline",
		Engine:  "sast",
		Path:    "svc",
	}}}

	t.Run("table", func(t *testing.T) {
		t.Parallel()
		var buf bytes.Buffer
		if err := format.Write(&buf, format.Table, res, gate); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{
			"Not analysed: 1 part",
			"  - svc (sast): go: errors parsing go.mod: svc/go.mod:3: unexpected newline\n",
			"NOT_ANALYSED: sast could not analyse svc",
		} {
			if !strings.Contains(buf.String(), want) {
				t.Errorf("table lacks %q:\n%s", want, buf.String())
			}
		}
	})
	t.Run("json", func(t *testing.T) {
		t.Parallel()
		var buf bytes.Buffer
		if err := format.Write(&buf, format.JSON, res, gate); err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Unanalysed []scanner.Unanalysed `json:"unanalysed"`
			Gate       format.Gate          `json:"gate"`
		}
		if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(doc.Unanalysed, res.Unanalysed); diff != "" {
			t.Errorf("unanalysed (-got +want):\n%s", diff)
		}
		if !slices.ContainsFunc(doc.Gate.Reasons, func(r format.GateReason) bool { return r.Code == scanner.CodeNotAnalysed && r.Path == "svc" }) {
			t.Errorf("gate reasons %+v lack NOT_ANALYSED for svc", doc.Gate.Reasons)
		}
	})
	t.Run("sarif", func(t *testing.T) {
		t.Parallel()
		var buf bytes.Buffer
		if err := format.Write(&buf, format.SARIF, res, gate); err != nil {
			t.Fatal(err)
		}
		schematest.Validate(t, schematest.SARIF210, buf.Bytes())
		var doc struct {
			Runs []struct {
				Invocations []struct {
					ExecutionSuccessful        *bool `json:"executionSuccessful"`
					ToolExecutionNotifications []struct {
						Level     string
						Message   struct{ Text string }
						Locations []struct {
							PhysicalLocation struct {
								ArtifactLocation struct{ URI string } `json:"artifactLocation"`
							} `json:"physicalLocation"`
						}
					} `json:"toolExecutionNotifications"`
				}
			}
		}
		if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
			t.Fatal(err)
		}
		if len(doc.Runs) != 1 || len(doc.Runs[0].Invocations) != 1 {
			t.Fatalf("runs %+v; want one run with one invocation", doc.Runs)
		}
		inv := doc.Runs[0].Invocations[0]
		if inv.ExecutionSuccessful == nil || *inv.ExecutionSuccessful {
			t.Errorf("executionSuccessful = %v; want false", inv.ExecutionSuccessful)
		}
		if len(inv.ToolExecutionNotifications) != 1 {
			t.Fatalf("notifications %+v; want one", inv.ToolExecutionNotifications)
		}
		n := inv.ToolExecutionNotifications[0]
		if n.Level != "error" || !strings.Contains(n.Message.Text, "svc") || len(n.Locations) != 1 || n.Locations[0].PhysicalLocation.ArtifactLocation.URI != "svc" {
			t.Errorf("notification %+v; want an error located at svc", n)
		}
	})
	t.Run("sarif of a complete scan", func(t *testing.T) {
		t.Parallel()
		var buf bytes.Buffer
		if err := format.Write(&buf, format.SARIF, result(), nil); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(buf.String(), "toolExecutionNotifications") {
			t.Errorf("a complete scan's SARIF has execution notifications:\n%s", buf.String())
		}
	})
}
