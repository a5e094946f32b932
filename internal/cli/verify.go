package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-sec/vigil/ci/gateclient"
	"github.com/vigil-sec/vigil/reports/attest"
	"github.com/vigil-sec/vigil/reports/bundle"
)

// newVerifyCmd returns `vigil verify`: an audit report bundle checked
// offline against report-signing public keys.
func newVerifyCmd(stdio Stdio) *cobra.Command {
	var (
		keyFiles []string
		keyURL   keyServerFlags
		asJSON   bool
	)
	cmd := &cobra.Command{
		Use:   "verify BUNDLE.zip|DIR (--key FILE [--key FILE]... | --server URL [--ca-cert FILE | --fingerprint SHA256]) [--json]",
		Short: "Verify a signed audit report bundle offline",
		Long: `Verify an audit report bundle, as a ZIP or as the folder it was extracted
into, against the vendor's report-signing public keys: the signature of
attestation.intoto.jsonl (a DSSE envelope holding an in-toto statement), that
its predicate names the key that signed, and that the bundle's files are
exactly the statement's subjects, each with its size and SHA-256: none
changed, missing or added. For a ZIP it also checks that the file holds
nothing but its entries; in a folder, symbolic links are refused.

--key takes a PEM file of public keys or a JWKS document (the vendor's
/.well-known/vigil/report-keys.pem or /.well-known/vigil/report-keys), and
may be repeated; any of the keys may have signed. --server fetches the JWKS
from the vendor's Vigil server instead (https only; trust a self-signed
certificate with --ca-cert, or pin it with --fingerprint, its SHA-256).
With --key, nothing is fetched: verification is offline.

Exit codes: 0 verified; 1 not verified (each failing file or check is
named); 2 bad usage, or a bundle or key file that cannot be read.`,
		Example: `  vigil verify --key report-key.pem widget-1.4.0-acme.zip
  cd widget-1.4.0-acme && vigil verify --key ../report-key.pem .
  vigil verify --key report-keys.json --json bundle.zip
  vigil verify --server https://vigil.example.com:8443 widget-1.4.0-acme.zip`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			keys, err := keyURL.publicKeys(cmd.Context(), keyFiles)
			if err != nil {
				return err
			}
			res, err := bundle.Verify(cmd.Context(), args[0], keys)
			switch {
			case errors.Is(err, bundle.ErrNotVerified):
				return notVerified(stdio, err)
			case errors.Is(err, fs.ErrNotExist), errors.Is(err, fs.ErrPermission):
				return &usageError{err}
			case err != nil:
				return err
			}
			if asJSON {
				enc := json.NewEncoder(stdio.Out)
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			return printVerified(stdio, res)
		},
	}
	cmd.Flags().StringArrayVar(&keyFiles, "key", nil, "a report-signing public key file, PEM or JWKS (repeatable; or --server)")
	keyURL.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the verified report and files as JSON")
	return cmd
}

// keyServerFlags say where `vigil verify --server` fetches the keys and
// how it trusts the server's certificate.
type keyServerFlags struct {
	server, caCert, fingerprint string
	timeout                     time.Duration
}

func (f *keyServerFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.server, "server", "", "fetch the keys from this Vigil server's "+reportKeysPath+" (https)")
	fl.StringVar(&f.caCert, "ca-cert", "", "with --server: PEM file of the certificate(s) to trust for the server")
	fl.StringVar(&f.fingerprint, "fingerprint", "", "with --server: SHA-256 fingerprint of the server's certificate, as vigil serve prints it")
	fl.DurationVar(&f.timeout, "timeout", 30*time.Second, "with --server: how long fetching the keys may take")
}

// reportKeysPath is where a Vigil server publishes its report-signing
// keys as a JWKS.
const reportKeysPath = "/.well-known/vigil/report-keys"

// maxKeySet bounds the key set read from a server.
const maxKeySet = 1 << 20

// publicKeys reads the --key files, or fetches the keys from --server;
// every problem is a usage error (exit 2: the keys cannot be had).
func (f *keyServerFlags) publicKeys(ctx context.Context, files []string) ([]attest.PublicKey, error) {
	switch {
	case f.server != "" && len(files) > 0:
		return nil, &usageError{errors.New("give --key or --server, not both")}
	case f.server == "" && (f.caCert != "" || f.fingerprint != ""):
		return nil, &usageError{errors.New("--ca-cert and --fingerprint go with --server")}
	case f.server == "":
		return readPublicKeys(files)
	}
	u, err := url.Parse(f.server)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		return nil, &usageError{fmt.Errorf("--server %q is not an https URL such as https://vigil.example.com:8443: the keys are fetched over TLS only", f.server)}
	}
	if f.timeout <= 0 {
		return nil, &usageError{errors.New("--timeout must be positive")}
	}
	tlsConf, err := gateclient.TLSConfig(f.caCert, f.fingerprint)
	if err != nil {
		return nil, &usageError{err}
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsConf
	hc := &http.Client{Transport: transport, Timeout: f.timeout}
	keysURL := strings.TrimRight(f.server, "/") + reportKeysPath
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, keysURL, nil)
	if err != nil {
		return nil, &usageError{err}
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, &usageError{fmt.Errorf("fetch the report-signing keys: %w", err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &usageError{fmt.Errorf("fetch the report-signing keys: %s answered %s", keysURL, resp.Status)}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxKeySet+1))
	if err != nil {
		return nil, &usageError{fmt.Errorf("fetch the report-signing keys: %w", err)}
	}
	if len(body) > maxKeySet {
		return nil, &usageError{fmt.Errorf("fetch the report-signing keys: %s is larger than %d bytes", keysURL, maxKeySet)}
	}
	keys, err := attest.ParsePublicKeys(body)
	if err != nil {
		return nil, &usageError{fmt.Errorf("%s: %w", keysURL, err)}
	}
	return keys, nil
}

// readPublicKeys reads the --key files; every problem is a usage error.
func readPublicKeys(files []string) ([]attest.PublicKey, error) {
	if len(files) == 0 {
		return nil, &usageError{errors.New("--key or --server is required: the vendor's report-signing public key, PEM or JWKS, or its Vigil server")}
	}
	var keys []attest.PublicKey
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			return nil, &usageError{fmt.Errorf("--key: %w", err)}
		}
		k, err := attest.ParsePublicKeys(data)
		if err != nil {
			return nil, &usageError{fmt.Errorf("--key %s: %w", name, err)}
		}
		keys = append(keys, k...)
	}
	return keys, nil
}

// notVerified prints every failed check and returns the error that exits
// 1 without printing again.
func notVerified(stdio Stdio, err error) error {
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintf(stdio.Err, "vigil: not verified: %s\n", line)
	}
	return errGateFailed
}

func printVerified(stdio Stdio, res *bundle.Result) error {
	r := res.Report
	tw := tabwriter.NewWriter(stdio.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "verified\t%d files, signed by key %s\n", len(res.Files), res.KeyID)
	fmt.Fprintf(tw, "product\t%s\n", nameAndID(r.Release.ProductName, r.Release.Product))
	fmt.Fprintf(tw, "version\t%s\n", r.Release.Version)
	fmt.Fprintf(tw, "recipient\t%s\n", nameAndID(r.Recipient.Name, r.Recipient.Tenant))
	if r.Ticket != "" {
		fmt.Fprintf(tw, "ticket\t%s\n", r.Ticket)
	}
	for _, s := range r.Scans {
		fmt.Fprintf(tw, "scan\t%s\n", describeScan(s))
	}
	for _, f := range res.Files {
		fmt.Fprintf(tw, "file\t%s  %s (%d bytes)\n", f.SHA256, f.Name, f.Size)
	}
	return tw.Flush()
}

func nameAndID(name, id string) string {
	if name == "" || name == id {
		return id
	}
	return name + " (" + id + ")"
}

func describeScan(s attest.Scan) string {
	t := s.Target
	what := strings.TrimSpace(t.Project + " " + t.Repository + " commit " + t.Commit)
	if t.Kind == attest.TargetImage {
		what = t.Image + "@" + t.Digest
	}
	engines := make([]string, 0, len(s.Engines))
	for _, e := range s.Engines {
		engines = append(engines, e.ID+" "+e.Version)
	}
	return fmt.Sprintf("%s (%s) finished %s", what, strings.Join(engines, ", "), s.FinishedAt.UTC().Format(time.RFC3339))
}
