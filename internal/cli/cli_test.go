package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-sec/vigil/internal/cli"
	"github.com/vigil-sec/vigil/internal/gittest"
	"github.com/vigil-sec/vigil/internal/schematest"
)

// vigil runs the command line in-process and returns its exit code,
// stdout and stderr.
func vigil(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Main(context.Background(), args, cli.Stdio{In: strings.NewReader(""), Out: &out, Err: &errb})
	t.Logf("vigil %s → %d\nstderr: %s", strings.Join(args, " "), code, errb.String())
	return code, out.String(), errb.String()
}

// report is the part of Vigil's JSON these tests read.
type report struct {
	Target struct {
		Kind, Ref, Commit, Digest string
	}
	Findings []struct {
		RuleID      string `json:"rule_id"`
		File        string
		Line        int
		Fingerprint string
		Suppressed  bool
		Status      string
	}
	SBOM *struct {
		Components []component
	}
	Gate struct {
		Decision string
		Reasons  []struct{ Code, Message string }
	}
}

func readReport(t *testing.T, path string) report {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return r
}

func (r report) rules() []string {
	var ids []string
	for _, f := range r.Findings {
		ids = append(ids, f.RuleID+" "+f.File+" "+f.Status)
	}
	slices.Sort(ids)
	return ids
}

func (r report) reasonCodes() []string {
	var c []string
	for _, x := range r.Gate.Reasons {
		c = append(c, x.Code)
	}
	return c
}

// app copies the fixture module into a fresh directory.
func app(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "app")
	err := os.CopyFS(dst, os.DirFS("testdata/app"))
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestScanDirectoryWritesEveryFormat(t *testing.T) {
	t.Parallel()
	dir := app(t)
	out := t.TempDir()
	p := func(n string) string { return filepath.Join(out, n) }
	code, stdout, _ := vigil(t, "scan", "-q", dir,
		"-o", "table",
		"-o", "json="+p("r.json"),
		"-o", "sarif="+p("r.sarif"),
		"-o", "cyclonedx-json="+p("bom.cdx.json"),
		"-o", "cyclonedx-xml="+p("bom.cdx.xml"),
		"-o", "spdx-json="+p("bom.spdx.json"))
	if code != cli.ExitGateFailed {
		t.Fatalf("exit %d, want %d (G404 is high severity)", code, cli.ExitGateFailed)
	}
	if !strings.Contains(stdout, "Gate: FAIL") || !strings.Contains(stdout, "G404") {
		t.Errorf("table output lacks the gate or the finding:\n%s", stdout)
	}
	r := readReport(t, p("r.json"))
	want := []string{"G104 main.go ", "G401 hash/hash.go ", "G404 main.go ", "G501 hash/hash.go "}
	if diff := cmp.Diff(r.rules(), want); diff != "" {
		t.Errorf("findings (-got +want):\n%s", diff)
	}
	if r.Gate.Decision != "fail" || !slices.Contains(r.reasonCodes(), "FINDING") {
		t.Errorf("gate = %+v", r.Gate)
	}
	if r.SBOM == nil || !slices.ContainsFunc(r.SBOM.Components, func(c component) bool { return c.Name == "example.com/app" }) {
		t.Errorf("sbom lacks the main module: %+v", r.SBOM)
	}
	for file, schema := range map[string]string{
		"r.sarif":       schematest.SARIF210,
		"bom.cdx.json":  schematest.CycloneDX16,
		"bom.spdx.json": schematest.SPDX23,
	} {
		b, err := os.ReadFile(p(file))
		if err != nil {
			t.Fatal(err)
		}
		t.Run(file, func(t *testing.T) { schematest.Validate(t, schema, b) })
	}
	if b, err := os.ReadFile(p("bom.cdx.xml")); err != nil || !bytes.Contains(b, []byte("http://cyclonedx.org/schema/bom/1.6")) {
		t.Errorf("CycloneDX XML is not 1.6: %v\n%.300s", err, b)
	}
	// Nothing half-written is left beside the reports.
	entries, _ := os.ReadDir(out)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

func TestGatePolicy(t *testing.T) {
	t.Parallel()
	tomorrow := time.Now().UTC().AddDate(0, 0, 1).Format(time.DateOnly)
	yesterday := time.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly)
	tests := []struct {
		name      string
		policy    string // written to .vigil.yaml at the target root
		args      []string
		wantCode  int
		wantCodes []string
	}{
		{name: "defaults fail on the high finding", wantCode: 1, wantCodes: []string{"FINDING"}},
		{name: "active waiver passes", policy: waiver("main.go", tomorrow), wantCode: 0, wantCodes: []string{"PASSED"}},
		{name: "expired waiver fails and says so", policy: waiver("main.go", yesterday), wantCode: 1, wantCodes: []string{"FINDING", "WAIVER_EXPIRED"}},
		{name: "waiver on another path does not apply", policy: waiver("cmd/**", tomorrow), wantCode: 1, wantCodes: []string{"FINDING"}},
		{name: "fail-on medium fails on md5 despite the waiver", policy: waiver("main.go", tomorrow), args: []string{"--fail-on", "medium"}, wantCode: 1, wantCodes: []string{"FINDING", "FINDING"}},
		{name: "excluded rule", policy: "rules:\n  exclude: [G404]\n", wantCode: 0, wantCodes: []string{"PASSED"}},
		{name: "confidence threshold above the finding", policy: "fail_on:\n  severity: high\n  confidence: high\n", wantCode: 0, wantCodes: []string{"PASSED"}},
		{name: "fail-on low fails on the unhandled error too", policy: "rules:\n  exclude: [G404, G401, G501]\n", args: []string{"--fail-on", "low"}, wantCode: 1, wantCodes: []string{"FINDING"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := app(t)
			if tt.policy != "" {
				write(t, filepath.Join(dir, ".vigil.yaml"), tt.policy)
			}
			out := filepath.Join(t.TempDir(), "r.json")
			args := append([]string{"scan", "-q", "--engines", "sast", "-o", "json=" + out}, tt.args...)
			code, _, _ := vigil(t, append(args, dir)...)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d", code, tt.wantCode)
			}
			if diff := cmp.Diff(readReport(t, out).reasonCodes(), tt.wantCodes); diff != "" {
				t.Errorf("reason codes (-got +want):\n%s", diff)
			}
		})
	}
}

func waiver(path, expires string) string {
	return "waivers:\n  - rule: G404\n    path: \"" + path + "\"\n    reason: dice, not secrets\n    owner: sec@example.com\n    expires: " + expires + "\n"
}

func TestBaselineOnlyNewFindingsFail(t *testing.T) {
	t.Parallel()
	dir := app(t)
	tmp := t.TempDir()
	base := filepath.Join(tmp, "base.json")
	if code, _, _ := vigil(t, "scan", "-q", "--engines", "sast", "-o", "json="+base, dir); code != 1 {
		t.Fatalf("first scan exit %d, want 1", code)
	}
	// The same tree against its own baseline passes: nothing is new.
	if code, _, _ := vigil(t, "scan", "-q", "--engines", "sast", "--baseline", base, "-o", "json="+filepath.Join(tmp, "same.json"), dir); code != 0 {
		t.Errorf("rescan against its own baseline: exit %d, want 0", code)
	}
	// Move the old finding down and add a new one: only the new one fails.
	src, err := os.ReadFile(filepath.Join(dir, "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	moved := strings.Replace(string(src), "func main() {", "// a comment\n\n\nfunc main() {", 1) +
		"\nfunc roll2() int {\n\treturn rand.Int() % 12\n}\n"
	write(t, filepath.Join(dir, "main.go"), moved)
	for _, b := range []string{base} {
		out := filepath.Join(tmp, "pr.json")
		sarifOut := filepath.Join(tmp, "pr.sarif")
		code, _, _ := vigil(t, "scan", "-q", "--engines", "sast", "--baseline", b, "-o", "json="+out, "-o", "sarif="+sarifOut, dir)
		if code != 1 {
			t.Errorf("exit %d, want 1 for the new finding", code)
		}
		r := readReport(t, out)
		want := []string{"G104 main.go unchanged", "G401 hash/hash.go unchanged", "G404 main.go new", "G404 main.go unchanged", "G501 hash/hash.go unchanged"}
		if diff := cmp.Diff(r.rules(), want); diff != "" {
			t.Errorf("statuses (-got +want):\n%s", diff)
		}
		// A SARIF baseline gives the same answer as a JSON one.
		code, _, _ = vigil(t, "scan", "-q", "--engines", "sast", "--baseline", sarifOut, "-o", "json="+filepath.Join(tmp, "again.json"), dir)
		if code != 0 {
			t.Errorf("scan against the SARIF of the same tree: exit %d, want 0", code)
		}
	}
}

func TestScanGitCommits(t *testing.T) {
	t.Parallel()
	r := gittest.New(t)
	repo := r.Dir
	clean := r.Commit("clean", map[string]string{
		"go.mod":  "module example.com/repo\n\ngo 1.22\n",
		"main.go": "package main\n\nfunc main() {}\n",
	})
	weak := r.Commit("weak random", map[string]string{
		"main.go": "package main\n\nimport \"math/rand\"\n\nfunc main() { println(rand.Intn(3)) }\n",
	})
	md5c := r.Commit("md5", map[string]string{
		"main.go": "package main\n\nimport \"crypto/md5\"\n\nfunc main() { println(md5.Sum(nil)[0]) }\n",
	})

	tests := []struct {
		ref, commit string
		wantCode    int
		wantRules   []string
	}{
		{repo, clean, 0, nil},
		{repo, weak, 1, []string{"G404 main.go "}},
		{"file://" + repo, md5c, 0, []string{"G401 main.go ", "G501 main.go "}},
		{repo, "main", 0, []string{"G401 main.go ", "G501 main.go "}},
	}
	code, _, stderr := vigil(t, "scan", "-q", "--commit", "nosuchbranch", repo)
	if code != cli.ExitUsage || !strings.Contains(stderr, "nosuchbranch") {
		t.Errorf("unknown commit: exit %d, stderr %q; want exit 2 naming it", code, stderr)
	}
	for _, tt := range tests {
		out := filepath.Join(t.TempDir(), "r.json")
		code, _, _ := vigil(t, "scan", "-q", "--engines", "sast", "--commit", tt.commit, "-o", "json="+out, tt.ref)
		if code != tt.wantCode {
			t.Errorf("%s@%s: exit %d, want %d", tt.ref, tt.commit, code, tt.wantCode)
		}
		r := readReport(t, out)
		if diff := cmp.Diff(r.rules(), tt.wantRules); diff != "" {
			t.Errorf("%s@%s findings (-got +want):\n%s", tt.ref, tt.commit, diff)
		}
		if r.Target.Kind != "git" || len(r.Target.Commit) != 40 {
			t.Errorf("target = %+v", r.Target)
		}
	}
}

func TestBadInputIsAUsageErrorNamingIt(t *testing.T) {
	t.Parallel()
	dir := app(t)
	tmp := t.TempDir()
	badPolicy := filepath.Join(tmp, "bad.yaml")
	write(t, badPolicy, "fail_on:\n  severity: extreme\n")
	noOwner := filepath.Join(tmp, "noowner.yaml")
	write(t, noOwner, "waivers:\n  - rule: G404\n    reason: r\n    expires: 2030-01-01\n")
	badBase := filepath.Join(tmp, "base.txt")
	write(t, badBase, "not a report")
	aFile := filepath.Join(tmp, "file.txt")
	write(t, aFile, "x")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing path", []string{"scan", filepath.Join(tmp, "nope")}, "nope"},
		{"a file", []string{"scan", aFile}, "archive:"},
		{"unknown format", []string{"scan", "-o", "yaml", dir}, `"yaml"`},
		{"two stdout outputs", []string{"scan", "-o", "json", "-o", "sarif", dir}, "stdout"},
		{"missing output dir", []string{"scan", "-o", "json=" + filepath.Join(tmp, "no", "r.json"), dir}, "does not exist"},
		{"unknown engine", []string{"scan", "--engines", "dast", dir}, `"dast"`},
		{"sbom format without sbom engine", []string{"scan", "--engines", "sast", "-o", "spdx-json", dir}, "sbom engine"},
		{"bad fail-on", []string{"scan", "--fail-on", "severe", dir}, `"severe"`},
		{"bad policy level", []string{"scan", "--policy", badPolicy, dir}, "bad.yaml:2"},
		{"waiver without owner", []string{"scan", "--policy", noOwner, dir}, "owner"},
		{"missing policy", []string{"scan", "--policy", filepath.Join(tmp, "none.yaml"), dir}, "none.yaml"},
		{"bad baseline", []string{"scan", "--baseline", badBase, dir}, "base.txt"},
		{"not a repository", []string{"scan", "--commit", "main", dir}, "not a git repository"},
		{"bad image reference", []string{"scan", "registry.example.com/UPPER:tag"}, "UPPER"},
		{"missing oci layout", []string{"scan", "oci:" + filepath.Join(tmp, "nolayout")}, "nolayout"},
		{"missing archive", []string{"scan", "archive:" + filepath.Join(tmp, "no.tar")}, "no.tar"},
		{"unknown flag", []string{"scan", "--frobnicate", dir}, "frobnicate"},
		{"unknown command", []string{"scna"}, "scna"},
		{"two targets", []string{"scan", dir, dir}, "arg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, _, stderr := vigil(t, tt.args...)
			if code != cli.ExitUsage {
				t.Errorf("exit %d, want %d", code, cli.ExitUsage)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr %q does not name %q", stderr, tt.want)
			}
		})
	}
	// Nothing was written into the target by any of these.
	_ = fs.WalkDir(os.DirFS(dir), ".", func(p string, d fs.DirEntry, err error) error {
		if strings.HasSuffix(p, ".json") || strings.HasSuffix(p, ".sarif") {
			t.Errorf("unexpected file %s in the target", p)
		}
		return nil
	})
}

func TestUnreachableRegistryIsAScanFailure(t *testing.T) {
	t.Parallel()
	// A port on loopback that nothing listens on.
	code, _, stderr := vigil(t, "scan", "-q", "--insecure", "127.0.0.1:1/nothing/here:latest")
	if code != cli.ExitScanFailed {
		t.Errorf("exit %d, want %d", code, cli.ExitScanFailed)
	}
	if !strings.Contains(stderr, "127.0.0.1:1/nothing/here:latest") {
		t.Errorf("stderr %q does not name the reference", stderr)
	}
}

// binary builds the real vigil command once for the tests that run it as
// a process: build information (module versions) and exit codes are only
// real there.
var binary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "vigil-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "vigil")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/vigil-sec/vigil/cmd/vigil")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

func TestMain(m *testing.M) {
	// No test reads or writes the user's own `vigil login`: each that
	// logs in sets its own directory.
	cfg, err := os.MkdirTemp("", "vigil-config-")
	if err != nil {
		panic(err)
	}
	os.Setenv("VIGIL_CONFIG_DIR", cfg)
	code := m.Run()
	os.RemoveAll(cfg)
	if bin, err := binary(); err == nil {
		os.RemoveAll(filepath.Dir(bin))
	}
	os.Exit(code)
}

func runBinary(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	bin, err := binary()
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

func TestVersionNamesTheEngines(t *testing.T) {
	t.Parallel()
	code, out, _ := runBinary(t, "version", "--json")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var v cli.Versions
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"gosec": "v2.30.0", "syft": "v1.57.1", "go-containerregistry": "v0.22.1"}
	for e, ver := range want {
		if v.Engines[e] != ver {
			t.Errorf("version of %s = %q, want %q", e, v.Engines[e], ver)
		}
	}
	code, out, _ = runBinary(t, "version")
	if code != 0 || !strings.Contains(out, "gosec") || !strings.Contains(out, "v2.30.0") {
		t.Errorf("vigil version: exit %d\n%s", code, out)
	}
	code, out, _ = runBinary(t, "--version")
	if code != 0 || out != "vigil "+v.Vigil+"\n" {
		t.Errorf("vigil --version: exit %d, %q; want \"vigil %s\"", code, out, v.Vigil)
	}
}

func TestProcessExitCodes(t *testing.T) {
	t.Parallel()
	dir := app(t)
	for _, tt := range []struct {
		args []string
		want int
	}{
		{[]string{"scan", "-q", "--engines", "sast", dir}, cli.ExitGateFailed},
		{[]string{"scan", "-q", "--engines", "sast", "--fail-on", "high", filepath.Join(dir, "hash")}, cli.ExitUsage}, // no go.mod: sast does not apply
		{[]string{"scan", "--bogus"}, cli.ExitUsage},
		{[]string{"scan", "-q", "--insecure", "127.0.0.1:1/x/y:z"}, cli.ExitScanFailed},
	} {
		code, _, stderr := runBinary(t, tt.args...)
		if code != tt.want {
			t.Errorf("vigil %v: exit %d, want %d; stderr %s", tt.args, code, tt.want, stderr)
		}
	}
	clean := t.TempDir()
	write(t, filepath.Join(clean, "go.mod"), "module example.com/clean\n\ngo 1.22\n")
	write(t, filepath.Join(clean, "main.go"), "package main\n\nfunc main() {}\n")
	if code, _, stderr := runBinary(t, "scan", "-q", clean); code != cli.ExitPass {
		t.Errorf("clean module: exit %d, want 0; stderr %s", code, stderr)
	}
}

func TestOutputToAPipeWritesInPlace(t *testing.T) {
	t.Parallel()
	fifo := filepath.Join(t.TempDir(), "report.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("cannot make a FIFO here: %v", err)
	}
	got := make(chan []byte, 1)
	go func() {
		b, _ := os.ReadFile(fifo) // blocks until the writer opens and closes it
		got <- b
	}()
	code, _, _ := vigil(t, "scan", "-q", "--engines", "sast", "-o", "json="+fifo, app(t))
	if code != cli.ExitGateFailed {
		t.Errorf("exit %d, want %d", code, cli.ExitGateFailed)
	}
	// Check the pipe first: had it been replaced, the reader would wait
	// on the old one forever.
	st, err := os.Lstat(fifo)
	if err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		t.Fatalf("the FIFO was replaced: %v, mode %v", err, st.Mode())
	}
	var r report
	if err := json.Unmarshal(<-got, &r); err != nil || len(r.Findings) == 0 {
		t.Errorf("the report read from the pipe: %v, %d findings", err, len(r.Findings))
	}
}

func TestParallelGivesTheSameResult(t *testing.T) {
	t.Parallel()
	dir := app(t)
	var got []report
	for _, flag := range []string{"--parallel=false", "--parallel"} {
		out := filepath.Join(t.TempDir(), "r.json")
		if code, _, _ := vigil(t, "scan", "-q", flag, "-o", "json="+out, dir); code != cli.ExitGateFailed {
			t.Fatalf("%s: exit %d, want %d", flag, code, cli.ExitGateFailed)
		}
		got = append(got, readReport(t, out))
	}
	if diff := cmp.Diff(got[0].rules(), got[1].rules()); diff != "" {
		t.Errorf("findings differ (-sequential +parallel):\n%s", diff)
	}
	if diff := cmp.Diff(got[0].SBOM, got[1].SBOM); diff != "" {
		t.Errorf("SBOMs differ (-sequential +parallel):\n%s", diff)
	}
}

// Small things a newcomer trips on: FORMAT=- is stdout, syft's spelling
// of a directory target works, and with every report in a file the gate's
// reasons still reach the CI log on stderr.
func TestOutputDashSyftSchemesAndGateOnStderr(t *testing.T) {
	t.Parallel()
	dir := app(t)
	out := filepath.Join(t.TempDir(), "r.json")
	code, stdout, stderr := vigil(t, "scan", "-q", "--engines", "sast", "-o", "json="+out, "-o", "sarif=-", "dir:"+dir)
	if code != cli.ExitGateFailed {
		t.Fatalf("exit %d, want %d; stderr %s", code, cli.ExitGateFailed, stderr)
	}
	if !strings.Contains(stdout, `"version": "2.1.0"`) {
		t.Errorf("sarif=- did not write SARIF to stdout:\n%.300s", stdout)
	}
	if len(readReport(t, out).Findings) == 0 {
		t.Error("the JSON report has no findings")
	}
	if strings.Contains(stderr, "Gate:") {
		t.Errorf("a report went to stdout, yet the gate was printed on stderr too:\n%s", stderr)
	}

	// Every report in a file: the gate's reasons on stderr.
	code, stdout, stderr = vigil(t, "scan", "-q", "--engines", "sast", "-o", "json="+out, dir)
	if code != cli.ExitGateFailed || stdout != "" {
		t.Fatalf("exit %d, stdout %q", code, stdout)
	}
	if !strings.Contains(stderr, "Gate: FAIL") || !strings.Contains(stderr, "  - ") {
		t.Errorf("stderr does not say why the gate failed:\n%s", stderr)
	}

	for _, tt := range []struct{ target, want string }{
		{"dir:" + filepath.Join(dir, "missing"), "no such directory"},
		{"dir:", "names nothing"},
		{"docker:alpine:3.20", "container daemon"},
		{"oci-dir:" + filepath.Join(dir, "missing"), "OCI layout"},
		{"docker-archive:" + filepath.Join(dir, "missing.tar"), "image archive"},
	} {
		code, _, stderr := vigil(t, "scan", "-q", tt.target)
		if code != cli.ExitUsage || !strings.Contains(stderr, tt.want) {
			t.Errorf("vigil scan %s: exit %d, stderr %q; want %d and %q", tt.target, code, stderr, cli.ExitUsage, tt.want)
		}
	}
}
