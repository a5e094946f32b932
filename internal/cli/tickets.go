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

// newTicketsCmd returns `vigil tickets`: the support tickets of a running
// server, through its Management API (the server announces every change
// to the tenant's webhooks). --json prints the API's JSON as it answered.
func newTicketsCmd(stdio Stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tickets",
		Short: "Read and answer the support tickets of a running Vigil server",
		Long: `Read and answer support tickets through a running server's Management API:
customers ask for the latest audit report of products they are entitled to;
staff approve or reject.

The server is --server or $VIGIL_SERVER; the client credentials come from
VIGIL_CLIENT_ID and VIGIL_CLIENT_SECRET: staff need a client with scope
` + server.ScopeTicketsAdmin + `; a customer's client bound to its tenant (vigil clients create
--tenant T --scopes ` + server.ScopeTicketsWrite + `) may create, list, show and comment on its
tenant's tickets. A ticket is named by its number or its ID.

Exit codes: 0 done; 2 bad usage, or the server refused the input (unknown
ticket, invalid field, a product the tenant is not entitled to, a ticket
decided already); 3 the server could not be reached or answered another
error.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newTicketsCreateCmd(stdio), newTicketsListCmd(stdio), newTicketsShowCmd(stdio),
		newTicketsCommentCmd(stdio), newTicketsApproveCmd(stdio), newTicketsRejectCmd(stdio))
	for _, c := range cmd.Commands() {
		c.Args = wrapArgs(c.Args)
	}
	return cmd
}

// ticketPath is the API path of a ticket, and of what follows it.
func ticketPath(ref string, rest ...string) string {
	return "/api/v1/tickets/" + url.PathEscape(ref) + strings.Join(rest, "")
}

// ticketCall sends one request whose answer is a ticket, and prints it
// (as the API answered with --json).
func ticketCall(cmd *cobra.Command, stdio Stdio, sf *serverFlags, asJSON bool, method, path string, body any) error {
	out, err := sf.call(cmd.Context(), server.ScopeTicketsAdmin, method, path, body)
	if err != nil {
		return err
	}
	if asJSON {
		return printRaw(stdio.Out, out)
	}
	var d reports.TicketDetail
	if err := json.Unmarshal(out, &d); err != nil {
		return fmt.Errorf("the server's ticket is not JSON: %w", err)
	}
	printTicket(stdio.Out, d)
	return nil
}

// printTicket prints a ticket and its history in words.
func printTicket(w io.Writer, d reports.TicketDetail) {
	fmt.Fprintf(w, "ticket %d (%s): %s\n", d.Number, d.ID, d.Status)
	fmt.Fprintf(w, "  tenant:   %s\n  products: %s\n  subject:  %s\n", d.TenantID, strings.Join(d.Products, ", "), d.Subject)
	if d.Contact != "" {
		fmt.Fprintf(w, "  contact:  %s\n", d.Contact)
	}
	if d.Release != "" {
		fmt.Fprintf(w, "  release:  %s\n", d.Release)
	}
	fmt.Fprintf(w, "  opened:   %s by %s\n", d.CreatedAt.UTC().Format(time.RFC3339), d.CreatedBy)
	fmt.Fprintf(w, "  message:\n%s\n", indent(d.Message, "    "))
	for _, l := range d.Links {
		// Shown once: the approval's answer is the only place.
		fmt.Fprintf(w, "secure link %s (%s %s), expires %s, %d downloads; shown once, not stored:\n", l.ID, l.ProductID, l.Version,
			l.ExpiresAt.UTC().Format(time.RFC3339), l.DownloadsLeft)
		if l.URL != "" {
			fmt.Fprintf(w, "  %s\n", l.URL)
		} else {
			fmt.Fprintf(w, "  token %s (the server has no --public-url: the link is SERVER/r/TOKEN)\n", l.Token)
		}
	}
	if d.LinkError != "" {
		fmt.Fprintf(w, "%s\n", d.LinkError)
	}
	if len(d.History) == 0 {
		return
	}
	fmt.Fprintln(w, "history:")
	for _, ev := range d.History {
		var b struct{ Message, Reason, Release, Policy, To string }
		json.Unmarshal(ev.Body, &b)
		fmt.Fprintf(w, "  %d. %s %s by %s", ev.Seq, ev.At.UTC().Format(time.RFC3339), ev.Type, ev.Actor)
		switch {
		case b.Release != "":
			fmt.Fprintf(w, " (release %s)", b.Release)
		case b.Policy != "":
			fmt.Fprintf(w, " (policy %s)", b.Policy)
		case b.To != "":
			fmt.Fprintf(w, " (to %s)", b.To)
		}
		fmt.Fprintln(w)
		if text := b.Message + b.Reason; text != "" {
			fmt.Fprintln(w, indent(text, "     "))
		}
	}
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}

func newTicketsCreateCmd(stdio Stdio) *cobra.Command {
	var (
		sf                       serverFlags
		tenant, subject, message string
		contact                  string
		products                 []string
		asJSON                   bool
	)
	cmd := &cobra.Command{
		Use:   "create --tenant T --product P [--product P]... --subject S --message M [--contact EMAIL]",
		Short: "Open a ticket asking for the latest audit report of the products (for a tenant, as staff)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(products) == 0:
				return &usageError{errors.New("--product is required (repeat it for several)")}
			case strings.TrimSpace(subject) == "":
				return &usageError{errors.New("--subject is required")}
			case strings.TrimSpace(message) == "":
				return &usageError{errors.New("--message is required")}
			}
			body := map[string]any{"products": products, "subject": subject, "message": message}
			if tenant != "" {
				body["tenant_id"] = tenant
			}
			if contact != "" {
				if _, err := reports.CheckContact(contact); err != nil {
					return &usageError{fmt.Errorf("--%s", strings.TrimPrefix(err.Error(), reports.ErrInvalid.Error()+": "))}
				}
				body["contact"] = contact
			}
			return ticketCall(cmd, stdio, &sf, asJSON, "POST", "/api/v1/tickets", body)
		},
	}
	sf.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&tenant, "tenant", "", "the tenant the ticket is for (staff; a tenant's own client may leave it out)")
	fl.StringArrayVar(&products, "product", nil, "a product ID the report is asked for; repeatable")
	fl.StringVar(&subject, "subject", "", "the subject: one line")
	fl.StringVar(&message, "message", "", "the message")
	fl.StringVar(&contact, "contact", "", "the requester's e-mail address: the secure link is mailed there when the server sends mail (--smtp-url)")
	fl.BoolVar(&asJSON, "json", false, "print the ticket as the API does")
	return cmd
}

func newTicketsListCmd(stdio Stdio) *cobra.Command {
	var (
		sf             serverFlags
		status, tenant string
		asJSON         bool
	)
	cmd := &cobra.Command{
		Use:   "list [--status open|approved|rejected] [--tenant T]",
		Short: "List the tickets, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := sf.client(server.ScopeTicketsAdmin)
			if err != nil {
				return err
			}
			q := url.Values{}
			if status != "" {
				q.Set("status", status)
			}
			if tenant != "" {
				q.Set("tenant_id", tenant)
			}
			path := "/api/v1/tickets"
			if len(q) > 0 {
				path += "?" + q.Encode()
			}
			all, err := c.listAll(cmd.Context(), path, "tickets")
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(stdio.Out, map[string]any{"tickets": all, "next_cursor": ""})
			}
			tw := tabwriter.NewWriter(stdio.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NUMBER\tSTATUS\tTENANT\tPRODUCTS\tSUBJECT\tUPDATED")
			for _, raw := range all {
				var t reports.Ticket
				if err := json.Unmarshal(raw, &t); err != nil {
					return err
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", t.Number, t.Status, t.TenantID, strings.Join(t.Products, ","), t.Subject,
					t.UpdatedAt.UTC().Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&status, "status", "", "only tickets with this status: "+strings.Join(reports.TicketStatuses, ", "))
	cmd.Flags().StringVar(&tenant, "tenant", "", "only this tenant's tickets (staff)")
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"tickets": [...], "next_cursor": ""} as the API does`)
	return cmd
}

func newTicketsShowCmd(stdio Stdio) *cobra.Command {
	var (
		sf     serverFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "show TICKET",
		Short: "Show a ticket (its number or ID) with its history",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return ticketCall(cmd, stdio, &sf, asJSON, "GET", ticketPath(args[0]), nil)
		},
	}
	sf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the ticket as the API does")
	return cmd
}

func newTicketsCommentCmd(stdio Stdio) *cobra.Command {
	var (
		sf      serverFlags
		message string
		asJSON  bool
	)
	cmd := &cobra.Command{
		Use:   "comment TICKET --message M",
		Short: "Comment on a ticket; the tenant receives it as ticket.commented",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(message) == "" {
				return &usageError{errors.New("--message is required")}
			}
			return ticketCall(cmd, stdio, &sf, asJSON, "POST", ticketPath(args[0], "/comments"), map[string]any{"message": message})
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&message, "message", "", "the comment")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the ticket as the API does")
	return cmd
}

func newTicketsApproveCmd(stdio Stdio) *cobra.Command {
	var (
		sf      serverFlags
		release string
		asJSON  bool
	)
	cmd := &cobra.Command{
		Use:   "approve TICKET [--release R]",
		Short: "Approve an open ticket (staff), for the latest release or --release",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return ticketCall(cmd, stdio, &sf, asJSON, "POST", ticketPath(args[0], "/approve"), map[string]any{"release": release})
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&release, "release", "", "the release to send (default: the latest)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the ticket as the API does")
	return cmd
}

func newTicketsRejectCmd(stdio Stdio) *cobra.Command {
	var (
		sf     serverFlags
		reason string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "reject TICKET --reason R",
		Short: "Reject an open ticket (staff), with the reason the tenant reads",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(reason) == "" {
				return &usageError{errors.New("--reason is required: the tenant reads it")}
			}
			return ticketCall(cmd, stdio, &sf, asJSON, "POST", ticketPath(args[0], "/reject"), map[string]any{"reason": reason})
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&reason, "reason", "", "why (the tenant reads it)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the ticket as the API does")
	return cmd
}
