package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/vigil-sec/vigil/internal/server"
	reportsapi "github.com/vigil-sec/vigil/reports/api"
)

// newBundlesCmd returns `vigil bundles`: the signed audit report bundles
// of releases, through a running server's Management API.
func newBundlesCmd(stdio Stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bundles",
		Short: "Build and download the signed audit report bundles of releases on a running Vigil server",
		Long: `Build and download the signed audit report bundles of releases on a running
Vigil server through its Management API. A bundle is a ZIP of a release's
SBOMs (CycloneDX, SPDX), SAST findings (SARIF), a summary (PDF and HTML,
watermarked with the tenant and the ticket), a README and a signed in-toto
attestation; vigil verify checks it offline. One is built per release,
tenant and ticket; asking again answers the stored one, byte for byte.

The server is --server or $VIGIL_SERVER; the client credentials come from
VIGIL_CLIENT_ID and VIGIL_CLIENT_SECRET (a client with scope reports:admin).
A server with a self-signed certificate is trusted with --ca-cert or
--fingerprint, as for vigil gate.

Exit codes: 0 done; 2 bad usage, or the server refused the input (an
unknown release, tenant or ticket, a release that is not ready); 3 the
server could not be reached, answered another error, or the downloaded
bytes are not the bundle's.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newBundlesBuildCmd(stdio), newBundlesDownloadCmd(stdio))
	for _, c := range cmd.Commands() {
		c.Args = wrapArgs(c.Args)
	}
	return cmd
}

func newBundlesBuildCmd(stdio Stdio) *cobra.Command {
	var (
		sf                      serverFlags
		release, tenant, ticket string
		output                  string
		asJSON                  bool
	)
	cmd := &cobra.Command{
		Use:   "build --release ID --tenant T [--ticket N] [-o FILE]",
		Short: "Build (or find) the bundle of a release for a tenant, and download it with -o",
		Long: `Build the audit report bundle of a ready release for a licensing tenant and,
with --ticket, the support ticket it answers (by ID or number: the tenant's,
asking for the release's product); without one, every page says "ticket
none". The bundle built before for the same release, tenant and ticket is
answered as it is. With -o FILE, its ZIP is downloaded there and its SHA-256
checked against the bundle's.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if release == "" || tenant == "" {
				return &usageError{errors.New("--release and --tenant are required")}
			}
			c, err := sf.client(server.ScopeReportsAdmin)
			if err != nil {
				return err
			}
			body := map[string]any{"tenant_id": tenant}
			if ticket != "" {
				body["ticket"] = ticket
			}
			out, err := c.call(cmd.Context(), "POST", "/api/v1/releases/"+url.PathEscape(release)+"/bundles", body)
			if err != nil {
				return err
			}
			var b reportsapi.Bundle
			if err := json.Unmarshal(out, &b); err != nil {
				return fmt.Errorf("the server's bundle is not JSON: %w", err)
			}
			if output != "" {
				if err := c.downloadBundle(cmd.Context(), b, output); err != nil {
					return err
				}
			}
			if asJSON {
				return printRaw(stdio.Out, out)
			}
			printBundle(stdio.Out, b, output)
			return nil
		},
	}
	sf.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&release, "release", "", "the release's ID")
	fl.StringVar(&tenant, "tenant", "", "the licensing tenant's ID")
	fl.StringVar(&ticket, "ticket", "", "the support ticket it answers, by ID or number")
	fl.StringVarP(&output, "output", "o", "", "download the bundle's ZIP to this file")
	fl.BoolVar(&asJSON, "json", false, "print the bundle as the API answers it")
	return cmd
}

func newBundlesDownloadCmd(stdio Stdio) *cobra.Command {
	var (
		sf     serverFlags
		output string
	)
	cmd := &cobra.Command{
		Use:   "download ID -o FILE",
		Short: "Download a bundle's ZIP, checking its SHA-256",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output == "" {
				return &usageError{errors.New("-o FILE is required")}
			}
			c, err := sf.client(server.ScopeReportsAdmin)
			if err != nil {
				return err
			}
			out, err := c.call(cmd.Context(), "GET", "/api/v1/bundles/"+url.PathEscape(args[0]), nil)
			if err != nil {
				return err
			}
			var b reportsapi.Bundle
			if err := json.Unmarshal(out, &b); err != nil {
				return fmt.Errorf("the server's bundle is not JSON: %w", err)
			}
			if err := c.downloadBundle(cmd.Context(), b, output); err != nil {
				return err
			}
			printBundle(stdio.Out, b, output)
			return nil
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "", "the file to write the ZIP to")
	return cmd
}

// downloadBundle writes the bundle's ZIP to path (through a temporary
// file beside it, renamed once its size and SHA-256 are the bundle's).
func (c *apiClient) downloadBundle(ctx context.Context, b reportsapi.Bundle, path string) error {
	req, err := http.NewRequestWithContext(ctx, "GET", c.server+"/api/v1/bundles/"+url.PathEscape(b.ID)+"/download", nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("vigil server %s: %w", c.server, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e := &apiError{Status: resp.StatusCode}
		var eb struct{ Code, Message string }
		if json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&eb) == nil {
			e.Code, e.Message = eb.Code, eb.Message
		}
		if e.badInput() {
			return &usageError{e}
		}
		return e
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".vigil-bundle-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(resp.Body, b.Size+1))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("download bundle %s: %w", b.ID, err)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); n != b.Size || sum != b.SHA256 {
		return fmt.Errorf("download bundle %s: got %d bytes with SHA-256 %s, the bundle is %d bytes with %s", b.ID, n, sum, b.Size, b.SHA256)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil { // #nosec G302 -- a report meant to be handed to its recipient
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// printBundle prints a bundle of the API in words.
func printBundle(w io.Writer, b reportsapi.Bundle, path string) {
	fmt.Fprintf(w, "bundle %s of %s %s (release %s)\n", b.ID, b.ProductID, b.Version, b.ReleaseID)
	fmt.Fprintf(w, "  for:     %s (%s), ticket %s\n", b.TenantName, b.TenantID, b.Ticket)
	fmt.Fprintf(w, "  zip:     %d bytes, sha256 %s\n", b.Size, b.SHA256)
	fmt.Fprintf(w, "  key:     %s\n", b.KeyID)
	for _, f := range b.Files {
		fmt.Fprintf(w, "  file:    %-26s %10d bytes  %s\n", f.Name, f.Size, f.SHA256)
	}
	if path != "" {
		fmt.Fprintf(w, "  saved:   %s (check it: vigil verify %s --server URL)\n", path, path)
	}
}
