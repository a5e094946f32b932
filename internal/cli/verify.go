package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-sec/vigil/reports/attest"
	"github.com/vigil-sec/vigil/reports/bundle"
)

// newVerifyCmd returns `vigil verify`: an audit report bundle checked
// offline against report-signing public keys.
func newVerifyCmd(stdio Stdio) *cobra.Command {
	var (
		keyFiles []string
		asJSON   bool
	)
	cmd := &cobra.Command{
		Use:   "verify BUNDLE.zip|DIR --key FILE [--key FILE]... [--json]",
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
may be repeated; any of the keys may have signed. (Fetching the keys from a
server with --server is not supported yet: download them and use --key.)

Exit codes: 0 verified; 1 not verified (each failing file or check is
named); 2 bad usage, or a bundle or key file that cannot be read.`,
		Example: `  vigil verify --key report-key.pem widget-1.4.0-acme.zip
  cd widget-1.4.0-acme && vigil verify --key ../report-key.pem .
  vigil verify --key report-keys.json --json bundle.zip`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			keys, err := readPublicKeys(keyFiles)
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
	cmd.Flags().StringArrayVar(&keyFiles, "key", nil, "a report-signing public key file, PEM or JWKS (required, repeatable)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the verified report and files as JSON")
	return cmd
}

// readPublicKeys reads the --key files; every problem is a usage error.
func readPublicKeys(files []string) ([]attest.PublicKey, error) {
	if len(files) == 0 {
		return nil, &usageError{errors.New("--key is required: the vendor's report-signing public key, PEM or JWKS")}
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
