package cli_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/internal/cli"
)

// TestServeSMTPFlagErrors: bad mail server flags are usage errors that
// name the flag and never show the URL's password; a mail server the
// outbound policy refuses stops serve at start.
func TestServeSMTPFlagErrors(t *testing.T) {
	dir := t.TempDir()
	const pw = "pw-never-shown"
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--smtp-url", "smtp://u:" + pw + "@mail.example.com"}, "no sender"},
		{[]string{"--smtp-url", "smtp://u:" + pw + "%zz@mail.example.com?from=a@example.com"}, "--smtp-url"},
		{[]string{"--smtp-url", "http://u:" + pw + "@mail.example.com?from=a@example.com"}, "--smtp-url"},
		{[]string{"--smtp-url", "smtp://u:" + pw + "@mail.example.com?starttls=off&from=a@example.com"}, "in clear"},
		{[]string{"--smtp-url", "smtp://u:" + pw + "@mail.example.com?from=a@example.com", "--smtp-from", "b@example.com"}, "give the sender once"},
		{[]string{"--smtp-url", "smtp://u:" + pw + "@mail.example.com", "--smtp-from", "not an address"}, "--smtp-from"},
		{[]string{"--smtp-from", "a@example.com"}, "need --smtp-url"},
		{[]string{"--smtp-url", "smtp://u:" + pw + "@mail.example.com?from=a@example.com", "--smtp-ca-cert", filepath.Join(dir, "missing.pem")}, "--smtp-ca-cert"},
	} {
		all := append([]string{"serve", "--addr", "127.0.0.1:0", "--data", filepath.Join(dir, "data")}, tt.args...)
		code, stdout, stderr := vigil(t, all...)
		if code != cli.ExitUsage || !strings.Contains(stderr, tt.want) {
			t.Errorf("vigil %s: exit %d, %q; want %d saying %q", strings.Join(tt.args, " "), code, stderr, cli.ExitUsage, tt.want)
		}
		if strings.Contains(stdout+stderr, pw) {
			t.Errorf("vigil %s: the password is shown: %q", strings.Join(tt.args, " "), stderr)
		}
	}
	// A relay on loopback needs the outbound policy to allow it.
	code, stdout, stderr := vigil(t, "serve", "--addr", "127.0.0.1:0", "--data", filepath.Join(dir, "data"),
		"--smtp-url", "smtp://u:"+pw+"@127.0.0.1:2525?from=a@example.com")
	if code == 0 || !strings.Contains(stderr, "--outbound-allow") || strings.Contains(stdout+stderr, pw) {
		t.Errorf("serve with a loopback relay the policy refuses: exit %d, %q", code, stderr)
	}
}

// TestTicketsCreateContact: a contact that is not one address is refused
// before any request.
func TestTicketsCreateContact(t *testing.T) {
	code, _, stderr := vigil(t, "tickets", "create", "--server", "https://127.0.0.1:1", "--tenant", "t", "--product", "p",
		"--subject", "s", "--message", "m", "--contact", "jane@example.com, eve@example.com")
	if code != cli.ExitUsage || !strings.Contains(stderr, "--contact") {
		t.Errorf("exit %d, %q; want %d naming --contact", code, stderr, cli.ExitUsage)
	}
}
