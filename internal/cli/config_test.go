package cli_test

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/vigil-sec/vigil/internal/cli"
)

// printed runs `vigil CMD --print-config` with args and returns the
// settings it prints, and where each came from.
func printed(t *testing.T, cmd string, args ...string) (map[string]any, map[string]string) {
	t.Helper()
	code, out, stderr := vigil(t, append([]string{cmd, "--print-config"}, args...)...)
	if code != 0 {
		t.Fatalf("vigil %s --print-config %v: exit %d: %s", cmd, args, code, stderr)
	}
	var settings map[string]any
	if err := yaml.Unmarshal([]byte(out), &settings); err != nil {
		t.Fatalf("--print-config printed no YAML: %v\n%s", err, out)
	}
	from := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, rest, ok := strings.Cut(l, ":"); ok {
			if _, c, ok := strings.Cut(rest, " # "); ok {
				from[k] = c
			}
		}
	}
	return settings, from
}

// A setting comes from the flag, else $VIGIL_<FLAG>, else the file, else
// the default: scalars, lists, booleans and durations alike.
func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "vigil.yaml")
	write(t, file, `workers: 3
outbound-allow: [10.0.0.0/8, 192.168.1.5]
http: true
activation-interval: 3s
rescan-days: 7
log-format: json
`)
	for _, env := range []string{"VIGIL_WORKERS", "VIGIL_OUTBOUND_ALLOW", "VIGIL_ACTIVATION_INTERVAL", "VIGIL_RESCAN_DAYS", "VIGIL_CONFIG", "VIGIL_HTTP", "VIGIL_LOG_FORMAT"} {
		t.Setenv(env, "")
	}

	// Defaults only.
	s, from := printed(t, "serve")
	if s["workers"] != 0 || s["http"] != false || s["activation-interval"] != "6s" || from["workers"] != "default" {
		t.Errorf("defaults: %v %v", s, from)
	}
	// The file over the defaults.
	s, from = printed(t, "serve", "--config", file)
	if s["workers"] != 3 || s["http"] != true || s["activation-interval"] != "3s" || s["rescan-days"] != 7 ||
		strings.Join(strs(s["outbound-allow"]), ",") != "10.0.0.0/8,192.168.1.5" || from["workers"] != file {
		t.Errorf("from the file: %v %v", s, from)
	}
	// The environment over the file; a list's items comma-separated.
	t.Setenv("VIGIL_WORKERS", "5")
	t.Setenv("VIGIL_OUTBOUND_ALLOW", "172.16.0.0/12, 10.9.9.9")
	t.Setenv("VIGIL_HTTP", "false")
	s, from = printed(t, "serve", "--config", file)
	if s["workers"] != 5 || s["http"] != false || strings.Join(strs(s["outbound-allow"]), ",") != "172.16.0.0/12,10.9.9.9" ||
		from["workers"] != "$VIGIL_WORKERS" || s["rescan-days"] != 7 {
		t.Errorf("from the environment: %v %v", s, from)
	}
	// Flags over everything.
	s, from = printed(t, "serve", "--config", file, "--workers", "9", "--outbound-allow", "10.1.0.0/16", "--http")
	if s["workers"] != 9 || s["http"] != true || strings.Join(strs(s["outbound-allow"]), ",") != "10.1.0.0/16" || from["workers"] != "flag" {
		t.Errorf("from the flags: %v %v", s, from)
	}
	// $VIGIL_CONFIG names the file.
	t.Setenv("VIGIL_CONFIG", file)
	t.Setenv("VIGIL_WORKERS", "")
	if s, _ := printed(t, "serve"); s["workers"] != 3 {
		t.Errorf("$VIGIL_CONFIG: workers %v, want 3", s["workers"])
	}
	t.Setenv("VIGIL_CONFIG", "")

	// What --print-config prints is a config file that gives the same.
	code, first, _ := vigil(t, "serve", "--print-config", "--config", file)
	again := filepath.Join(dir, "again.yaml")
	write(t, again, first)
	code2, second, stderr := vigil(t, "serve", "--print-config", "--config", again)
	if code != 0 || code2 != 0 || stripComments(first) != stripComments(second) {
		t.Errorf("--print-config fed back (exit %d %s):\n%s\nwant\n%s", code2, stderr, second, first)
	}

	// serve and worker share a file: worker takes the keys it has.
	write(t, file, "addr: 127.0.0.1:9443\nworkers: 2\ndatabase: postgres://vigil@db/vigil\n")
	s, _ = printed(t, "worker", "--config", file)
	if s["workers"] != 2 || s["addr"] != nil {
		t.Errorf("worker with serve's keys: %v", s)
	}
}

func strs(v any) []string {
	l, _ := v.([]any)
	out := make([]string, len(l))
	for i, x := range l {
		out[i], _ = x.(string)
	}
	return out
}

var commentRE = regexp.MustCompile(` # .*`)

func stripComments(s string) string { return commentRE.ReplaceAllString(s, "") }

// A file key that is no flag, or a value the flag refuses, is exit 2
// naming the key and the file (or the variable); nothing starts.
func TestConfigRefusals(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("VIGIL_CONFIG", "")
	t.Setenv("VIGIL_WORKERS", "")
	for _, tc := range []struct {
		yaml  string
		names []string
	}{
		{"adr: :8443\n", []string{`unknown key "adr"`}},
		{"outbound:\n  schemes: [https]\n", []string{`unknown key "outbound.schemes"`}},
		{"workers: many\n", []string{"key workers", `"many"`}},
		{"activation-interval: 6\n", []string{"key activation-interval"}},
		{"addr: [a, b]\n", []string{"key addr", "a list"}},
		{"addr:\n", []string{"key addr", "no value"}},
		{"addr: x\naddr: y\n", []string{"addr"}},
		{"workers: [\n", []string{"--config"}},
	} {
		file := filepath.Join(dir, "bad.yaml")
		write(t, file, tc.yaml)
		for _, cmd := range []string{"serve", "worker"} {
			code, out, stderr := vigil(t, cmd, "--print-config", "--config", file)
			if code != cli.ExitUsage || out != "" {
				t.Errorf("%s with %q: exit %d, printed %q; want %d and nothing", cmd, tc.yaml, code, out, cli.ExitUsage)
			}
			for _, n := range tc.names {
				if !strings.Contains(stderr, n) {
					t.Errorf("%s with %q: %q does not name %s", cmd, tc.yaml, stderr, n)
				}
			}
			if strings.HasPrefix(tc.names[0], "key") && !strings.Contains(stderr, file) {
				t.Errorf("%s with %q: %q does not name the file", cmd, tc.yaml, stderr)
			}
		}
	}
	if code, _, stderr := vigil(t, "serve", "--print-config", "--config", filepath.Join(dir, "missing.yaml")); code != cli.ExitUsage || !strings.Contains(stderr, "missing.yaml") {
		t.Errorf("a missing file: exit %d %q", code, stderr)
	}
	t.Setenv("VIGIL_WORKERS", "x")
	if code, _, stderr := vigil(t, "serve", "--print-config"); code != cli.ExitUsage || !strings.Contains(stderr, "$VIGIL_WORKERS") {
		t.Errorf("a bad $VIGIL_WORKERS: exit %d %q", code, stderr)
	}
}

// --print-config masks what is a secret, from wherever it came: the
// registry token, the SMTP URL's password, the database URL's password.
func TestPrintConfigMasksSecrets(t *testing.T) {
	t.Setenv("VIGIL_CONFIG", "")
	file := filepath.Join(t.TempDir(), "vigil.yaml")
	write(t, file, "registry-token: tok-in-file-0123456789\ndatabase: postgres://vigil:db-pass-in-file@db/vigil?sslmode=require\n")
	t.Setenv("VIGIL_SMTP_URL", "smtp://mailer:smtp-pass-in-env@mail.example.com:587?from=reports@example.com")
	for _, args := range [][]string{
		{"--config", file},
		{"--registry-token", "tok-on-flag-0123456789", "--database", "postgres://db/vigil?user=vigil&password=db-pass-in-query"},
	} {
		code, out, stderr := vigil(t, append([]string{"serve", "--print-config"}, args...)...)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		for _, secret := range []string{"tok-in-file", "tok-on-flag", "db-pass-in-file", "db-pass-in-query", "smtp-pass-in-env"} {
			if strings.Contains(out, secret) {
				t.Errorf("--print-config %v shows %s:\n%s", args, secret, out)
			}
		}
		for _, kept := range []string{"mail.example.com", "registry-token: '********'"} {
			if !strings.Contains(out, kept) {
				t.Errorf("--print-config %v lacks %q:\n%s", args, kept, out)
			}
		}
	}
}

// vigil serve runs with what the file says (here: plain HTTP, its data
// directory), not just prints it.
func TestServeRunsWithTheConfigFile(t *testing.T) {
	t.Setenv("VIGIL_CONFIG", "")
	dir := t.TempDir()
	file := filepath.Join(dir, "vigil.yaml")
	write(t, file, "http: true\ndata: "+filepath.Join(dir, "data")+"\nlog-format: json\n")
	base, banner := serveOn(t, "--config", file)
	if !strings.HasPrefix(base, "http://") || strings.Contains(banner, "TLS certificate") {
		t.Errorf("serve with http: true in the file serves %s:\n%s", base, banner)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "data", "vigil.db")); len(m) != 1 {
		t.Errorf("no store in the file's data directory")
	}
}
