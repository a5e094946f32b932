package cli

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-sec/vigil/internal/server"
	"github.com/vigil-sec/vigil/licensing/oauth"
)

func newClientsCmd(stdio Stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "clients",
		Short: "Manage the OAuth2 clients of the Management API",
		Long: "Manage the OAuth2 clients of the Management API. Through a server, the\n" +
			"commands need a client with scope " + server.ScopeAdmin + ".\n\n" + targetHelp,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newClientsCreateCmd(stdio), newClientsListCmd(stdio), newClientsRevokeCmd(stdio))
	for _, c := range cmd.Commands() {
		c.Args = wrapArgs(c.Args)
	}
	return cmd
}

// onOAuth is an op's local half that needs the token server.
func onOAuth(fn func(ctx context.Context, o *oauth.Server) (any, error)) func(context.Context, *local) (any, error) {
	return func(ctx context.Context, l *local) (any, error) {
		o, err := l.oauth(ctx)
		if err != nil {
			return nil, err
		}
		return fn(ctx, o)
	}
}

func newClientsCreateCmd(stdio Stdio) *cobra.Command {
	var (
		t      target
		name   string
		tenant string
		scopes []string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "create --name NAME --scopes SCOPE,… [--tenant TENANT]",
		Short: "Make a client and print its ID and secret (shown once)",
		Long: `Make a client of the Management API and print its ID and secret (shown once).

A client made with --tenant is bound to that licensing tenant: its tokens
act for the tenant alone (a customer's own client: it opens and reads the
tenant's support tickets with --scopes ` + server.ScopeTicketsWrite + `), and it may hold
only ` + strings.Join(server.TenantScopes, ", ") + `.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			name = strings.TrimSpace(name)
			if err := server.CheckNewClient(name, tenant, scopes); err != nil {
				// The API's field names are the flags' here.
				msg := strings.NewReplacer("name is required", "--name is required", "scopes is required", "--scopes is required", "tenant_id", "--tenant").Replace(err.Error())
				return &usageError{errors.New(msg)}
			}
			out, err := t.run(cmd, stdio, op{
				scope: server.ScopeAdmin, method: "POST", path: "/api/v1/clients",
				body: map[string]any{"name": name, "scopes": scopes, "tenant_id": tenant},
				local: onOAuth(func(ctx context.Context, o *oauth.Server) (any, error) {
					c, err := server.CreateClient(ctx, o, name, tenant, scopes)
					if errors.Is(err, oauth.ErrNotFound) {
						return nil, &usageError{fmt.Errorf("--tenant %q: no such tenant", tenant)}
					}
					return c, err
				}),
			})
			if err != nil {
				return err
			}
			return printObject(stdio, out, asJSON, "client", func(c server.NewClient) {
				fmt.Fprintf(stdio.Out, "client_id:     %s\nclient_secret: %s\n(the secret is shown only now)\n", c.ID, c.ClientSecret)
			})
		},
	}
	t.register(cmd)
	cmd.Flags().StringVar(&name, "name", "", "what the client is for")
	cmd.Flags().StringSliceVar(&scopes, "scopes", nil, "scopes, comma-separated or repeated (or --scope): "+strings.Join(server.Scopes, ", "))
	cmd.Flags().StringVar(&tenant, "tenant", "", "bind the client to this licensing tenant: it acts for the tenant alone")
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"client_id", "client_secret", "name", "scopes", …} as the API does`)
	// --scope is --scopes spelt as one might for a single scope.
	cmd.Flags().StringSliceVar(&scopes, "scope", nil, "a scope (as --scopes)")
	cmd.Flags().MarkHidden("scope")
	return cmd
}

func newClientsListCmd(stdio Stdio) *cobra.Command {
	var (
		t      target
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the clients, revoked ones included",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			all, err := t.runList(cmd, stdio, op{
				scope: server.ScopeAdmin, method: "GET", path: "/api/v1/clients", items: "clients",
				local: onOAuth(func(ctx context.Context, o *oauth.Server) (any, error) { return o.ListClients(ctx) }),
			})
			if err != nil {
				return err
			}
			if asJSON {
				return printItems(stdio, "clients", all)
			}
			tw := tabwriter.NewWriter(stdio.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CLIENT ID\tNAME\tSCOPES\tTENANT\tCREATED\tREVOKED")
			for _, raw := range all {
				var c oauth.Client
				if err := decode(raw, "client", &c); err != nil {
					return err
				}
				revoked := ""
				if !c.RevokedAt.IsZero() {
					revoked = c.RevokedAt.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Name, strings.Join(c.Scopes, ","), c.TenantID, c.CreatedAt.UTC().Format(time.RFC3339), revoked)
			}
			return tw.Flush()
		},
	}
	t.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"clients": [...], "next_cursor": ""} as the API does`)
	return cmd
}

func newClientsRevokeCmd(stdio Stdio) *cobra.Command {
	var (
		t      target
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "revoke CLIENT_ID",
		Short: "Revoke a client: it gets no more tokens and its tokens stop working",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			out, err := t.run(cmd, stdio, op{
				scope: server.ScopeAdmin, method: "POST", path: "/api/v1/clients/" + url.PathEscape(id) + "/revoke",
				local: onOAuth(func(ctx context.Context, o *oauth.Server) (any, error) {
					c, err := server.RevokeClient(ctx, o, id)
					if errors.Is(err, oauth.ErrNotFound) {
						return nil, &usageError{fmt.Errorf("no client has the ID %q (vigil clients list shows them)", id)}
					}
					return c, err
				}),
			})
			if err != nil {
				return err
			}
			return printObject(stdio, out, asJSON, "client", func(c oauth.Client) {
				fmt.Fprintf(stdio.Out, "revoked %s\n", c.ID)
			})
		},
	}
	t.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the client as the API does")
	return cmd
}
