package cli_test

import (
	"go/ast"
	"go/parser"
	gotoken "go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/internal/httpx"
	"github.com/vigil-sec/vigil/internal/tooltest"
)

// docBlock is a ```sh block of a document, named by its first line's
// comment ("# activate").
type docBlock struct{ label, code string }

var shBlockRE = regexp.MustCompile("(?s)```sh\n(.*?)```")

func shBlocks(t *testing.T, doc string) []docBlock {
	t.Helper()
	var out []docBlock
	for _, m := range shBlockRE.FindAllStringSubmatch(doc, -1) {
		first, _, _ := strings.Cut(m[1], "\n")
		label, ok := strings.CutPrefix(first, "# ")
		if !ok {
			t.Fatalf("a ```sh block does not start with its name (# name):\n%s", m[1])
		}
		label, _, _ = strings.Cut(label, ":")
		out = append(out, docBlock{label: strings.TrimSpace(label), code: m[1]})
	}
	return out
}

// TestLicensingAPIDocCurlExamples runs the curl examples of
// docs/licensing-api.md, as written and in order, against `vigil serve`
// over HTTPS (trusting its certificate as the page says), and checks what
// each printed: the nonce chain, the token a refresh replaces, a refusal
// that turns the nonce, an idempotent replay, deactivation, offline
// activation. It also checks that the page's table lists every error code
// of the Licensing API.
func TestLicensingAPIDocCurlExamples(t *testing.T) {
	tooltest.Need(t, "curl", "curl")
	tooltest.Need(t, "jq", "jq")
	bash := tooltest.Need(t, "bash", "bash")
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "licensing-api.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	blocks := shBlocks(t, doc)

	// What each example must print, by its name.
	want := map[string][]string{
		"setup":            nil,
		"activate":         {`"access_token":"`, `"lease_expires_at":"`, `"jobs":{"kind":"counted","limit":1}`},
		"wrong-code":       {`"code":"INVALID_CREDENTIALS"`, "401"},
		"get":              {`"seat_id":"build-01"`, `"seat_name":"build host"`, `"status":"active"`},
		"refresh":          {`"access_token":"`},
		"old-token":        {`"code":"INVALID_TOKEN"`, "replaced by a newer one", "401"},
		"checkout":         {`"feature":"jobs"`, `"checked_out":1`, `"in_use":1`, `"limit":1`},
		"return":           {`"checked_out":0`, `"in_use":0`},
		"track":            {`"feature":"export"`, `"tracked":3`},
		"limit":            {`"code":"FEATURE_LIMIT_REACHED"`, "409"},
		"retry":            {"idempotent-replayed: true", "the same answer and the same next nonce"},
		"stale-nonce":      {`"code":"NONCE_MISMATCH"`, "409"},
		"deactivate":       {"204"},
		"after-deactivate": {`"code":"INVALID_TOKEN"`, "deactivated", "401"},
		"offline":          {"200", "license valid: activation", "seat air-01"},
	}
	var script strings.Builder
	script.WriteString("set -euo pipefail\n")
	for _, b := range blocks {
		if _, ok := want[b.label]; !ok {
			t.Errorf("the page has an example %q the test does not check", b.label)
		}
		script.WriteString("echo '@@@ " + b.label + "'\n" + b.code + "\n")
	}
	for label := range want {
		if !slicesContainsLabel(blocks, label) {
			t.Errorf("the page lost its example %q", label)
		}
	}

	// The vendor's side: a tenant, a product, an entitlement whose code
	// the page uses, and the tenant's server key file.
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	store := []string{"--data", data}
	product := "com.example.app"
	tenant := strings.Fields(mustVigil(t, append([]string{"tenants", "create", "--name", "Doc Corp"}, store...)...))[1]
	mustVigil(t, append([]string{"products", "create", "--name", "App", "--id", product}, store...)...)
	out := mustVigil(t, append([]string{"entitlements", "create", "--tenant", tenant, "--product", product, "--seats", "2",
		"--lease", "1h", "--feature", "export", "--counted-feature", "jobs=1"}, store...)...)
	code := strings.Fields(out)[4] // entitlement: ID / activation code: CODE
	work := filepath.Join(dir, "work")
	if err := os.Mkdir(work, 0o700); err != nil {
		t.Fatal(err)
	}
	mustVigil(t, append([]string{"license", "server-key", "--tenant", tenant, "--out", filepath.Join(work, "server-key.json")}, store...)...)
	base, _ := serveOn(t, store...)

	bin, err := binary()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bash, "-c", script.String())
	cmd.Dir = work
	cmd.Env = append(os.Environ(),
		"VIGIL="+base, "CACERT="+filepath.Join(data, "tls", httpx.CertFile),
		"TENANT="+tenant, "PRODUCT="+product, "CODE="+code, "FP=machine-7f3a",
		"PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	outb, err := cmd.CombinedOutput()
	t.Logf("the page's examples printed:\n%s", outb)
	if err != nil {
		t.Fatalf("the page's examples failed: %v", err)
	}
	printed := map[string]string{}
	label := ""
	for _, l := range strings.SplitAfter(string(outb), "\n") {
		if name, ok := strings.CutPrefix(strings.TrimRight(l, "\n"), "@@@ "); ok {
			label = name
			continue
		}
		printed[label] += l
	}
	for label, subs := range want {
		for _, s := range subs {
			if !strings.Contains(strings.ToLower(printed[label]), strings.ToLower(s)) {
				t.Errorf("example %q printed\n%s\nwithout %q", label, printed[label], s)
			}
		}
	}

	// Every error code of the Licensing API is in the page's table.
	for _, c := range errorCodes(t, filepath.Join("..", "..", "licensing", "errors.go"), filepath.Join("..", "..", "licensing", "offline.go")) {
		if !strings.Contains(doc, "| `"+c+"`") && !strings.Contains(doc, "`"+c+"`, ") {
			t.Errorf("docs/licensing-api.md does not list the error code %s", c)
		}
	}
}

func slicesContainsLabel(blocks []docBlock, label string) bool {
	for _, b := range blocks {
		if b.label == label {
			return true
		}
	}
	return false
}

// mustVigil runs a command that must succeed and returns its output.
func mustVigil(t *testing.T, args ...string) string {
	t.Helper()
	code, out, stderr := vigil(t, args...)
	if code != 0 {
		t.Fatalf("vigil %s: exit %d: %s", strings.Join(args, " "), code, stderr)
	}
	return out
}

// errorCodes are the values of the Code… constants of Go files.
func errorCodes(t *testing.T, files ...string) []string {
	t.Helper()
	var codes []string
	for _, f := range files {
		af, err := parser.ParseFile(gotoken.NewFileSet(), f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range af.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != gotoken.CONST {
				continue
			}
			for _, s := range gd.Specs {
				vs := s.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if !strings.HasPrefix(n.Name, "Code") || i >= len(vs.Values) {
						continue
					}
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == gotoken.STRING {
						v, _ := strconv.Unquote(lit.Value)
						codes = append(codes, v)
					}
				}
			}
		}
	}
	if len(codes) < 10 {
		t.Fatalf("found only %d error codes in %v", len(codes), files)
	}
	return codes
}
