package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-sec/vigil/internal/server"
	reportsapi "github.com/vigil-sec/vigil/reports/api"
)

// newReleasesCmd returns `vigil releases`: the releases of products on a
// running server, through its Management API. --json prints the API's
// JSON as it answered.
func newReleasesCmd(stdio Stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "releases",
		Short: "Make and read the releases of products on a running Vigil server",
		Long: `Make and read the releases of products on a running Vigil server through its
Management API. A release is a named, immutable set of scans of a licensing
product: the commits of projects and the image digests its reports are made
of. A product's latest report is its newest ready release.

The server is --server or $VIGIL_SERVER; the client credentials come from
VIGIL_CLIENT_ID and VIGIL_CLIENT_SECRET (a client with scope projects:admin
for create, scans:read for list and show). A server with a self-signed
certificate is trusted with --ca-cert or --fingerprint, as for vigil gate.

Exit codes: 0 done; 2 bad usage, or the server refused the input (unknown
product or project, a version made already, commits or images without a
succeeded scan); 3 the server could not be reached or answered another
error.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newReleasesCreateCmd(stdio), newReleasesListCmd(stdio), newReleasesShowCmd(stdio))
	for _, c := range cmd.Commands() {
		c.Args = wrapArgs(c.Args)
	}
	return cmd
}

func newReleasesCreateCmd(stdio Stdio) *cobra.Command {
	var (
		sf                  serverFlags
		product, version    string
		projects, images    []string
		scanMissing, asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "create --product ID --version V [--project NAME[@COMMIT]]... [--image REF@DIGEST]... [--scan-missing]",
		Short: "Make a release of a product from succeeded scans (of its production projects when none is named)",
		Long: `Make a release of a product. --project NAME takes the newest succeeded scan
of the project's default branch, --project NAME@COMMIT the scan of that
commit (a full commit ID), --image REF@DIGEST the scan of that image digest.
With neither, the release takes the default branches of the product's
production projects (vigil projects update NAME --product ID --production).

Every commit and image needs a succeeded scan: otherwise the server names
each one missing and makes nothing, unless --scan-missing, which queues the
missing scans and makes the release pending until they finish (vigil
releases show ID says when it is ready, or which scan failed).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if product == "" || version == "" {
				return &usageError{errors.New("--product and --version are required")}
			}
			body := map[string]any{"product_id": product, "version": version, "projects": projects, "images": images, "scan_missing": scanMissing}
			out, err := sf.call(cmd.Context(), server.ScopeProjectsAdmin, "POST", "/api/v1/releases", body)
			if err != nil {
				return err
			}
			return printReleaseAnswer(stdio, out, asJSON)
		},
	}
	sf.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&product, "product", "", "the licensing product's ID")
	fl.StringVar(&version, "version", "", "the release's version, like 1.4.0 (made once per product)")
	fl.StringArrayVar(&projects, "project", nil, "a project, NAME (its default branch) or NAME@COMMIT (repeatable)")
	fl.StringArrayVar(&images, "image", nil, "an image, REF@DIGEST (repeatable)")
	fl.BoolVar(&scanMissing, "scan-missing", false, "queue the scans the release lacks: it is pending until they finish")
	fl.BoolVar(&asJSON, "json", false, "print the release as the API answers it")
	return cmd
}

func newReleasesListCmd(stdio Stdio) *cobra.Command {
	var (
		sf      serverFlags
		product string
		asJSON  bool
	)
	cmd := &cobra.Command{
		Use:   "list --product ID",
		Short: "List the releases of a product, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if product == "" {
				return &usageError{errors.New("--product is required")}
			}
			c, err := sf.client(server.ScopeScansRead)
			if err != nil {
				return err
			}
			all, err := c.listAll(cmd.Context(), "/api/v1/releases?product="+url.QueryEscape(product), "releases")
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(stdio.Out, map[string]any{"releases": all, "next_cursor": ""})
			}
			tw := tabwriter.NewWriter(stdio.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "VERSION\tSTATUS\tSCANS\tCREATED\tID")
			for _, raw := range all {
				var r reportsapi.Release
				if err := json.Unmarshal(raw, &r); err != nil {
					return err
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", r.Version, r.Status, len(r.Items), r.CreatedAt.UTC().Format(time.RFC3339), r.ID)
			}
			return tw.Flush()
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&product, "product", "", "the licensing product's ID")
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"releases": [...], "next_cursor": ""} as the API does`)
	return cmd
}

func newReleasesShowCmd(stdio Stdio) *cobra.Command {
	var (
		sf     serverFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show a release, its status as its scans now say",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out, err := sf.call(cmd.Context(), server.ScopeScansRead, "GET", "/api/v1/releases/"+url.PathEscape(args[0]), nil)
			if err != nil {
				return err
			}
			return printReleaseAnswer(stdio, out, asJSON)
		},
	}
	sf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the release as the API answers it")
	return cmd
}

func printReleaseAnswer(stdio Stdio, out []byte, asJSON bool) error {
	if asJSON {
		return printRaw(stdio.Out, out)
	}
	var r reportsapi.Release
	if err := json.Unmarshal(out, &r); err != nil {
		return err
	}
	printRelease(stdio.Out, r)
	return nil
}

// printRelease prints a release of the API in words.
func printRelease(w io.Writer, r reportsapi.Release) {
	fmt.Fprintf(w, "release %s of %s (%s)\n", r.Version, r.ProductID, r.ID)
	fmt.Fprintf(w, "  status:  %s\n", r.Status)
	if r.Error != "" {
		fmt.Fprintf(w, "  error:   %s\n", r.Error)
	}
	fmt.Fprintf(w, "  created: %s\n", r.CreatedAt.UTC().Format(time.RFC3339))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  TARGET\tSCAN\tSTATUS")
	for _, it := range r.Items {
		target := it.Project + "@" + it.Commit
		if it.Kind == "image" {
			target = it.Image + "@" + it.Digest
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", target, it.Scan, it.ScanStatus)
	}
	tw.Flush()
}
