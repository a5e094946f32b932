package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-sec/vigil/internal/server"
	"github.com/vigil-sec/vigil/reports"
)

// newLinksCmd returns `vigil links`: the secure links to report bundles
// of a running server, through its Management API. --json prints the
// API's JSON as it answered.
func newLinksCmd(stdio Stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "links",
		Short: "List, revoke and reissue the secure links to audit reports of a running Vigil server",
		Long: `Manage the secure links through which customers download their audit report
bundles. An approved ticket gets a link; its token is shown once (in the
approval's answer and the tenant's report_link.created webhook) and only a
keyed hash of it is kept, so a lost link is reissued, not shown again.

The server is --server or $VIGIL_SERVER; the client credentials come from
VIGIL_CLIENT_ID and VIGIL_CLIENT_SECRET: revoke and reissue need a client
with scope ` + server.ScopeTicketsAdmin + `; a customer's client bound to its tenant (scope
` + server.ScopeTicketsWrite + `) may list its tenant's links and read their access logs.

Exit codes: 0 done; 2 bad usage, or the server refused the input (unknown
link or ticket, a link revoked or reissued already, a bundle that changed);
3 the server could not be reached or answered another error.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newLinksListCmd(stdio), newLinksRevokeCmd(stdio), newLinksReissueCmd(stdio), newLinksAccessCmd(stdio))
	for _, c := range cmd.Commands() {
		c.Args = wrapArgs(c.Args)
	}
	return cmd
}

// linkPath is the API path of a link, and of what follows it.
func linkPath(id string, rest string) string {
	return "/api/v1/links/" + url.PathEscape(id) + rest
}

func newLinksListCmd(stdio Stdio) *cobra.Command {
	var (
		sf     serverFlags
		ticket string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "list --ticket N",
		Short: "List a ticket's links, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(ticket) == "" {
				return &usageError{errors.New("--ticket is required: the ticket's number or ID")}
			}
			c, err := sf.client(server.ScopeTicketsAdmin)
			if err != nil {
				return err
			}
			all, err := c.listAll(cmd.Context(), ticketPath(ticket, "/links"), "links")
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(stdio.Out, map[string]any{"links": all, "next_cursor": ""})
			}
			tw := tabwriter.NewWriter(stdio.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATUS\tPRODUCT\tVERSION\tDOWNLOADS\tEXPIRES\tREPLACED BY")
			for _, raw := range all {
				var l reports.Link
				if err := json.Unmarshal(raw, &l); err != nil {
					return err
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d of %d\t%s\t%s\n", l.ID, l.Status, l.ProductID, l.Version, l.Downloads, l.MaxDownloads,
					l.ExpiresAt.UTC().Format(time.RFC3339), l.ReplacedBy)
			}
			return tw.Flush()
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&ticket, "ticket", "", "the ticket (its number or ID)")
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"links": [...], "next_cursor": ""} as the API does`)
	return cmd
}

func newLinksRevokeCmd(stdio Stdio) *cobra.Command {
	var (
		sf     serverFlags
		reason string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "revoke LINK [--reason R]",
		Short: "Revoke a link (staff): it stops working at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var body any
			if reason != "" {
				body = map[string]any{"reason": reason}
			}
			out, err := sf.call(cmd.Context(), server.ScopeTicketsAdmin, "POST", linkPath(args[0], "/revoke"), body)
			if err != nil {
				return err
			}
			if asJSON {
				return printRaw(stdio.Out, out)
			}
			var l reports.Link
			if err := json.Unmarshal(out, &l); err != nil {
				return fmt.Errorf("the server's link is not JSON: %w", err)
			}
			fmt.Fprintf(stdio.Out, "link %s of ticket %d revoked\n", l.ID, l.TicketNumber)
			return nil
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&reason, "reason", "", "why (the tenant reads it)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the link as the API does")
	return cmd
}

func newLinksReissueCmd(stdio Stdio) *cobra.Command {
	var (
		sf           serverFlags
		expiresIn    time.Duration
		maxDownloads int
		asJSON       bool
	)
	cmd := &cobra.Command{
		Use:   "reissue LINK [--expires-in 168h] [--max-downloads 5]",
		Short: "Replace a link with a new one to the same bundle (staff): a new token, shown once; the old one stops working",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case expiresIn < 0 || expiresIn > reports.MaxLinkExpiry:
				return &usageError{fmt.Errorf("--expires-in %s: want at most %s (30 days)", expiresIn, reports.MaxLinkExpiry)}
			case expiresIn%time.Second != 0:
				return &usageError{fmt.Errorf("--expires-in %s: whole seconds", expiresIn)}
			case maxDownloads < 0 || maxDownloads > reports.MaxLinkDownloads:
				return &usageError{fmt.Errorf("--max-downloads %d: want 1 to %d", maxDownloads, reports.MaxLinkDownloads)}
			}
			body := map[string]any{"expires_in": int64(expiresIn / time.Second), "max_downloads": maxDownloads}
			out, err := sf.call(cmd.Context(), server.ScopeTicketsAdmin, "POST", linkPath(args[0], "/reissue"), body)
			if err != nil {
				return err
			}
			if asJSON {
				return printRaw(stdio.Out, out)
			}
			var l struct {
				reports.Link
				Token string `json:"token"`
				URL   string `json:"url"`
			}
			if err := json.Unmarshal(out, &l); err != nil {
				return fmt.Errorf("the server's link is not JSON: %w", err)
			}
			printNewLink(stdio.Out, l.Link, l.Token, l.URL)
			return nil
		},
	}
	sf.register(cmd)
	cmd.Flags().DurationVar(&expiresIn, "expires-in", 0, "how long the new link works (default 168h, at most 720h)")
	cmd.Flags().IntVar(&maxDownloads, "max-downloads", 0, fmt.Sprintf("how many downloads it allows (default %d)", reports.DefaultLinkDownloads))
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the link and its token as the API does")
	return cmd
}

// printNewLink prints a new link with its token, which is shown once.
func printNewLink(w io.Writer, l reports.Link, token, link string) {
	fmt.Fprintf(w, "link %s (ticket %d)", l.ID, l.TicketNumber)
	if l.Replaces != "" {
		fmt.Fprintf(w, " replaces %s, which no longer works", l.Replaces)
	}
	fmt.Fprintln(w)
	if link != "" {
		fmt.Fprintf(w, "  url:       %s\n", link)
	}
	fmt.Fprintf(w, "  token:     %s\n", token)
	fmt.Fprintf(w, "  expires:   %s\n  downloads: %d\n", l.ExpiresAt.UTC().Format(time.RFC3339), l.MaxDownloads)
	fmt.Fprintln(w, "The token is shown this once (the tenant's webhooks receive it as report_link.created).")
}

func newLinksAccessCmd(stdio Stdio) *cobra.Command {
	var (
		sf     serverFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "access LINK",
		Short: "Show a link's access log: every view and download, oldest first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := sf.client(server.ScopeTicketsAdmin)
			if err != nil {
				return err
			}
			all, err := c.listAll(cmd.Context(), linkPath(args[0], "/access"), "access")
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(stdio.Out, map[string]any{"access": all, "next_cursor": ""})
			}
			tw := tabwriter.NewWriter(stdio.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "AT\tKIND\tSTATUS\tBYTES\tCOUNTED\tCLIENT\tRANGE\tUSER AGENT")
			for _, raw := range all {
				var a reports.LinkAccess
				if err := json.Unmarshal(raw, &a); err != nil {
					return err
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%v\t%s\t%s\t%s\n", a.At.UTC().Format(time.RFC3339), a.Kind, a.Status, a.Bytes, a.Counted,
					a.ClientAddress, a.Range, a.UserAgent)
			}
			return tw.Flush()
		},
	}
	sf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"access": [...], "next_cursor": ""} as the API does`)
	return cmd
}
