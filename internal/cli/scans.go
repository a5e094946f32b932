package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/vigil-sec/vigil/internal/server"
)

// newScansCmd returns `vigil scans`: a running server's scans, through
// its Management API.
func newScansCmd(stdio Stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "scans",
		Short: "List, read, start and download the scans of a running Vigil server",
		Long: `List, read, start and download the scans of a running Vigil server through its
Management API (scope scans:read; scans:write to start one). The server and
the credentials are --server / $VIGIL_SERVER and $VIGIL_CLIENT_ID /
$VIGIL_CLIENT_SECRET, or what vigil login saved.

Exit codes: 0 done; 2 bad usage, or the server refused the input (an
unknown scan or project); 3 the server could not be reached or answered
another error.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newScansListCmd(stdio), newScansShowCmd(stdio), newScansStartCmd(stdio), newScansReportCmd(stdio))
	for _, c := range cmd.Commands() {
		c.Args = wrapArgs(c.Args)
	}
	return cmd
}

func newScansListCmd(stdio Stdio) *cobra.Command {
	var (
		sf                      serverFlags
		project, status, cursor string
		limit                   int
		asJSON                  bool
	)
	cmd := &cobra.Command{
		Use:   "list [--project NAME] [--status queued|running|succeeded|failed] [--limit N] [--cursor C]",
		Short: "One page of scans, newest first (the next page's cursor is printed)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			for k, v := range map[string]string{"project": project, "status": status, "cursor": cursor} {
				if v != "" {
					q.Set(k, v)
				}
			}
			if limit > 0 {
				q.Set("limit", strconv.Itoa(limit))
			}
			out, err := sf.call(cmd.Context(), server.ScopeScansRead, "GET", "/api/v1/scans?"+q.Encode(), nil)
			if err != nil {
				return err
			}
			if asJSON {
				return printRaw(stdio.Out, out)
			}
			var page struct {
				Scans      []server.Scan `json:"scans"`
				NextCursor string        `json:"next_cursor"`
			}
			if err := json.Unmarshal(out, &page); err != nil {
				return fmt.Errorf("the server's list of scans is not JSON: %w", err)
			}
			tw := tabwriter.NewWriter(stdio.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTARGET\tREVISION\tSTATUS\tGATE\tCREATED")
			for _, s := range page.Scans {
				target, rev := s.Project, short(s.Commit)
				if s.Kind == "image" {
					target, rev = s.Image, short(s.ImageDigest)
				}
				gate := "-"
				if s.Gate != nil {
					gate = s.Gate.Decision
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, target, rev, s.Status, gate, s.CreatedAt.UTC().Format("2006-01-02 15:04:05"))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if page.NextCursor != "" {
				fmt.Fprintf(stdio.Out, "more: --cursor %s\n", page.NextCursor)
			}
			return nil
		},
	}
	sf.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&project, "project", "", "only this project's scans")
	fl.StringVar(&status, "status", "", "only scans in this state: queued, running, succeeded or failed")
	fl.IntVar(&limit, "limit", 50, "scans per page (at most 500)")
	fl.StringVar(&cursor, "cursor", "", "the page after the one that printed this cursor")
	fl.BoolVar(&asJSON, "json", false, "print the API's JSON as it came")
	return cmd
}

// short is the first 12 characters of a commit or digest (after sha256:).
func short(s string) string {
	if len(s) > 7 && s[:7] == "sha256:" {
		s = s[7:]
	}
	if len(s) > 12 {
		return s[:12]
	}
	if s == "" {
		return "-"
	}
	return s
}

func newScansShowCmd(stdio Stdio) *cobra.Command {
	var (
		sf     serverFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "show SCAN_ID",
		Short: "A scan: target, status, engines, findings and gate",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out, err := sf.call(cmd.Context(), server.ScopeScansRead, "GET", "/api/v1/scans/"+url.PathEscape(args[0]), nil)
			if err != nil {
				return err
			}
			if asJSON {
				return printRaw(stdio.Out, out)
			}
			var s server.Scan
			if err := json.Unmarshal(out, &s); err != nil {
				return fmt.Errorf("the server's scan is not JSON: %w", err)
			}
			printScan(stdio.Out, s)
			return nil
		},
	}
	sf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON as it came")
	return cmd
}

// printScan prints a scan of the API in words.
func printScan(w io.Writer, s server.Scan) {
	fmt.Fprintf(w, "scan %s: %s", s.ID, s.Status)
	if s.Error != "" {
		fmt.Fprintf(w, " (%s)", s.Error)
	}
	fmt.Fprintln(w)
	if s.Kind == "image" {
		fmt.Fprintf(w, "  image:    %s @ %s\n", s.Image, s.ImageDigest)
	} else {
		fmt.Fprintf(w, "  project:  %s @ %s", s.Project, s.Commit)
		if s.Branch != "" {
			fmt.Fprintf(w, " (%s)", s.Branch)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "  created:  %s, trigger %s, attempts %d\n", s.CreatedAt.UTC().Format("2006-01-02 15:04:05"), s.Trigger, s.Attempts)
	for e, v := range s.Engines {
		fmt.Fprintf(w, "  engine:   %s %s\n", e, v)
	}
	if s.Status == "succeeded" {
		open := 0
		for _, f := range s.Findings {
			if !f.Suppressed {
				open++
			}
		}
		fmt.Fprintf(w, "  findings: %d (%d suppressed)\n", len(s.Findings), len(s.Findings)-open)
		if s.SBOM != nil {
			fmt.Fprintf(w, "  sbom:     %d components\n", s.SBOM.Components)
		}
	}
	if s.Gate != nil {
		fmt.Fprintf(w, "Gate: %s\n", s.Gate.Decision)
		for _, r := range s.Gate.Reasons {
			fmt.Fprintf(w, "  - %s: %s\n", r.Code, r.Message)
		}
	}
}

func newScansStartCmd(stdio Stdio) *cobra.Command {
	var (
		sf                     serverFlags
		project, commit, image string
		asJSON                 bool
	)
	cmd := &cobra.Command{
		Use:   "start (--project NAME --commit SHA | --image REF)",
		Short: "Ask the server to scan a commit of a project or an image (scope scans:write)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var body map[string]any
			switch {
			case image != "" && project == "" && commit == "":
				body = map[string]any{"image": image}
			case image == "" && project != "" && commit != "":
				body = map[string]any{"project": project, "commit": commit}
			default:
				return &usageError{errors.New("give --project and --commit, or --image")}
			}
			out, err := sf.call(cmd.Context(), server.ScopeScansWrite, "POST", "/api/v1/scans", body)
			if err != nil {
				return err
			}
			if asJSON {
				return printRaw(stdio.Out, out)
			}
			var s server.Scan
			if err := json.Unmarshal(out, &s); err != nil {
				return fmt.Errorf("the server's scan is not JSON: %w", err)
			}
			fmt.Fprintf(stdio.Out, "scan %s: %s (vigil scans show %s)\n", s.ID, s.Status, s.ID)
			return nil
		},
	}
	sf.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&project, "project", "", "the project whose commit to scan")
	fl.StringVar(&commit, "commit", "", "the commit to scan (with --project)")
	fl.StringVar(&image, "image", "", "the image to scan (registry/repo:tag or @digest)")
	fl.BoolVar(&asJSON, "json", false, "print the API's JSON as it came")
	return cmd
}

func newScansReportCmd(stdio Stdio) *cobra.Command {
	var (
		sf             serverFlags
		format, output string
	)
	cmd := &cobra.Command{
		Use:   "report SCAN_ID --format sarif|cyclonedx|spdx [-o FILE]",
		Short: "Download a scan's report as the server stored it (stdout without -o)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch format {
			case "sarif", "cyclonedx", "spdx":
			default:
				return &usageError{fmt.Errorf("--format %q: want sarif, cyclonedx or spdx", format)}
			}
			c, err := sf.client(server.ScopeScansRead)
			if err != nil {
				return err
			}
			req, err := http.NewRequestWithContext(cmd.Context(), "GET", c.server+"/api/v1/scans/"+url.PathEscape(args[0])+"/"+format, nil)
			if err != nil {
				return &usageError{err}
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
			if output == "" || output == "-" {
				_, err := io.Copy(stdio.Out, resp.Body)
				return err
			}
			tmp, err := os.CreateTemp(filepath.Dir(output), "."+filepath.Base(output)+".*")
			if err != nil {
				return err
			}
			defer os.Remove(tmp.Name()) // after the rename this finds nothing
			if _, err := io.Copy(tmp, resp.Body); err != nil {
				_ = tmp.Close()
				return fmt.Errorf("download the %s report: %w", format, err)
			}
			if err := tmp.Close(); err != nil {
				return err
			}
			if err := os.Chmod(tmp.Name(), 0o644); err != nil { // #nosec G302 -- a report, made to be read
				return err
			}
			return os.Rename(tmp.Name(), output)
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&format, "format", "sarif", "sarif, cyclonedx or spdx")
	cmd.Flags().StringVarP(&output, "output", "o", "", "the file to write (default: stdout)")
	return cmd
}
