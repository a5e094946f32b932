package cli

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/ci/gateclient"
	"github.com/vigil-sec/vigil/internal/httpx"
)

// Environment variables holding the gate client's credentials.
const (
	envClientID     = "VIGIL_CLIENT_ID"
	envClientSecret = "VIGIL_CLIENT_SECRET"
)

// gateFlags are the flags of `vigil gate`.
type gateFlags struct {
	server      string
	project     string
	commit      string
	image       string
	wait        time.Duration
	caCert      string
	fingerprint string
	json        bool
	scan        bool
}

func newGateCmd(stdio Stdio) *cobra.Command {
	var f gateFlags
	cmd := &cobra.Command{
		Use:   "gate --server URL (--project P --commit SHA | --image REF) [flags]",
		Short: "Ask a Vigil server whether a commit or an image passes the gate",
		Long: `Ask a Vigil server for the gate decision on a commit of a project or on a
container image, wait while its scan is pending (and, for a commit, while the
server has not heard of it yet), and print the decision with its reasons.

The client credentials come from VIGIL_CLIENT_ID and VIGIL_CLIENT_SECRET: a
client with scope gate:read (vigil clients create --scopes gate:read).

Asking never starts a scan: a commit is scanned when its push webhook
reaches the server. Without a webhook, --scan asks the server to scan the
commit or image first (POST /api/v1/scans); the client then needs scope
scans:write too (--scopes gate:read,scans:write).
A server with a self-signed certificate is trusted with --ca-cert (its
cert.pem) or --fingerprint (the SHA-256 that vigil serve printed).

Exit codes: 0 pass; 1 fail, or still pending or unknown when --wait runs
out; 2 bad usage; 3 the server could not be reached or answered an error.`,
		Example: `  vigil gate --server https://vigil.example.com:8443 --project app --commit "$GIT_COMMIT"
  vigil gate --server https://vigil.example.com:8443 --image registry.example.com/app@sha256:… --wait 0
  vigil gate --server https://10.0.0.5:8443 --fingerprint AB:CD:… --project app --commit 1a2b3c --json
  vigil gate --server https://vigil.example.com:8443 --scan --project app --commit "$GIT_COMMIT"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runGate(cmd, stdio, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.server, "server", "", "URL of the Vigil server (required)")
	fl.StringVar(&f.project, "project", "", "project whose commit to ask about (with --commit)")
	fl.StringVar(&f.commit, "commit", "", "commit SHA to ask about (with --project)")
	fl.StringVar(&f.image, "image", "", "container image to ask about: a tag or a digest reference")
	fl.DurationVar(&f.wait, "wait", 10*time.Minute, "how long to wait for a pending scan; 0 asks once")
	fl.StringVar(&f.caCert, "ca-cert", "", "PEM file of the certificate(s) to trust for the server")
	fl.StringVar(&f.fingerprint, "fingerprint", "", "SHA-256 fingerprint of the server's certificate, as vigil serve prints it")
	fl.BoolVar(&f.json, "json", false, "print the server's JSON answer as is")
	fl.BoolVar(&f.scan, "scan", false, "ask the server to scan the commit or image first (needs scope scans:write)")
	return cmd
}

// query checks the flags that say what to ask about.
func (f *gateFlags) query() (gateclient.Query, error) {
	q := gateclient.Query{Project: f.project, Commit: f.commit, Image: f.image}
	switch {
	case f.server == "":
		return q, errors.New("--server is required")
	case q.Image != "" && (q.Project != "" || q.Commit != ""):
		return q, errors.New("give --project and --commit, or --image, not both")
	case q.Image == "" && q.Project == "" && q.Commit == "":
		return q, errors.New("give --project and --commit, or --image")
	case q.Image == "" && (q.Project == "" || q.Commit == ""):
		return q, errors.New("--project and --commit go together")
	case f.caCert != "" && f.fingerprint != "":
		return q, errors.New("give --ca-cert or --fingerprint, not both")
	case f.wait < 0:
		return q, errors.New("--wait cannot be negative")
	}
	return q, nil
}

func runGate(cmd *cobra.Command, stdio Stdio, f gateFlags) error {
	q, err := f.query()
	if err != nil {
		return &usageError{err}
	}
	id, secret := os.Getenv(envClientID), os.Getenv(envClientSecret)
	if id == "" || secret == "" {
		return &usageError{fmt.Errorf("set %s and %s to the credentials of a client with scope %s (vigil clients create --scopes %s)",
			envClientID, envClientSecret, gateclient.Scope, gateclient.Scope)}
	}
	client, err := gateclient.New(gateclient.Config{
		Server: f.server, ClientID: id, ClientSecret: secret,
		CACert: f.caCert, Fingerprint: f.fingerprint, RequestScan: f.scan,
	})
	if err != nil {
		return &usageError{err}
	}

	var progress func(*gateclient.Answer)
	if isTerminal(stdio.Err) {
		start := time.Now()
		progress = func(a *gateclient.Answer) {
			fmt.Fprintf(stdio.Err, "vigil: %s is %s after %s; waiting up to %s\n",
				q, a.Decision, time.Since(start).Round(time.Second), f.wait)
		}
	}
	a, err := client.Wait(cmd.Context(), q, f.wait, progress)
	if err != nil {
		var ge *gateclient.Error
		if errors.As(err, &ge) && (ge.StatusCode == http.StatusNotFound || (ge.StatusCode == http.StatusBadRequest && ge.Code == httpx.CodeInvalidField)) {
			// The API refused what was asked: an unknown project, a
			// commit it cannot resolve. Bad input, exit 2. (The token
			// endpoint's refusals, a client without the scope, stay 3.)
			return &usageError{err}
		}
		return err // exit 3: the server could not be reached or failed
	}

	if f.json {
		out := a.Raw
		if len(out) == 0 || out[len(out)-1] != '\n' {
			out = append(out, '\n')
		}
		if _, err := stdio.Out.Write(out); err != nil {
			return err
		}
	} else {
		printAnswer(stdio, q, a, f.wait)
	}
	if !a.Passed() {
		return errGateFailed
	}
	return nil
}

func printAnswer(stdio Stdio, q gateclient.Query, a *gateclient.Answer, wait time.Duration) {
	fmt.Fprintf(stdio.Out, "Gate: %s for %s\n", a.Decision, q)
	for _, r := range a.Reasons {
		fmt.Fprintf(stdio.Out, "  - %s: %s\n", r.Code, r.Message)
	}
	switch a.Decision {
	case ci.Pending:
		fmt.Fprintf(stdio.Out, "The scan did not finish within --wait %s; the gate does not pass until it does.\n", wait)
	case ci.Unknown:
		fmt.Fprintf(stdio.Out, "The server has no scan result for %s; the gate does not pass without one.\n", q)
	}
	if a.Scan != "" {
		fmt.Fprintf(stdio.Out, "Scan: %s\n", a.Scan)
	}
}
