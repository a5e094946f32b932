package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
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
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newClientsCreateCmd(stdio), newClientsListCmd(stdio), newClientsRevokeCmd(stdio))
	for _, c := range cmd.Commands() {
		c.Args = wrapArgs(c.Args)
	}
	return cmd
}

// withOAuth opens the store and the token server for a clients command.
func withOAuth(cmd *cobra.Command, f *storeFlags, stdio Stdio, fn func(*oauth.Server) error) error {
	ctx := cmd.Context()
	db, err := f.openStore(ctx, slog.New(slog.NewTextHandler(stdio.Err, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return err
	}
	defer db.Close()
	key, err := f.sealKey()
	if err != nil {
		return err
	}
	cfg := oauth.DefaultConfig()
	cfg.TenantScopes = server.TenantScopes
	if cfg.Pepper, err = server.OAuthPepper(key); err != nil {
		return err
	}
	srv, err := oauth.New(ctx, db, cfg)
	if err != nil {
		return err
	}
	return fn(srv)
}

func newClientsCreateCmd(stdio Stdio) *cobra.Command {
	var (
		f      storeFlags
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
			if strings.TrimSpace(name) == "" {
				return &usageError{fmt.Errorf("--name is required")}
			}
			known := server.Scopes
			if tenant != "" {
				known = server.TenantScopes
			}
			if len(scopes) == 0 {
				return &usageError{fmt.Errorf("--scopes is required: some of %s", strings.Join(known, ", "))}
			}
			for _, s := range scopes {
				switch {
				case tenant != "" && slices.Contains(server.Scopes, s) && !slices.Contains(known, s):
					return &usageError{fmt.Errorf("scope %q: a client bound to a tenant may hold only %s", s, strings.Join(known, ", "))}
				case !slices.Contains(known, s):
					return &usageError{fmt.Errorf("unknown scope %q: want some of %s", s, strings.Join(known, ", "))}
				}
			}
			return withOAuth(cmd, &f, stdio, func(srv *oauth.Server) error {
				id, secret, err := srv.CreateTenantClient(cmd.Context(), name, tenant, scopes)
				if errors.Is(err, oauth.ErrNotFound) {
					return &usageError{fmt.Errorf("--tenant %q: no such tenant", tenant)}
				}
				if err != nil {
					return err
				}
				if asJSON {
					return json.NewEncoder(stdio.Out).Encode(server.Credentials{ClientID: id, ClientSecret: secret})
				}
				fmt.Fprintf(stdio.Out, "client_id:     %s\nclient_secret: %s\n(the secret is shown only now)\n", id, secret)
				return nil
			})
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&name, "name", "", "what the client is for")
	cmd.Flags().StringSliceVar(&scopes, "scopes", nil, "scopes, comma-separated or repeated (or --scope): "+strings.Join(server.Scopes, ", "))
	cmd.Flags().StringVar(&tenant, "tenant", "", "bind the client to this licensing tenant: it acts for the tenant alone")
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"client_id", "client_secret"}`)
	// --scope is --scopes spelt as one might for a single scope.
	cmd.Flags().StringSliceVar(&scopes, "scope", nil, "a scope (as --scopes)")
	cmd.Flags().MarkHidden("scope")
	return cmd
}

func newClientsListCmd(stdio Stdio) *cobra.Command {
	var (
		f      storeFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the clients, revoked ones included",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withOAuth(cmd, &f, stdio, func(srv *oauth.Server) error {
				cs, err := srv.ListClients(cmd.Context())
				if err != nil {
					return err
				}
				if asJSON {
					if cs == nil {
						cs = []oauth.Client{}
					}
					return json.NewEncoder(stdio.Out).Encode(map[string]any{"clients": cs, "next_cursor": ""})
				}
				tw := tabwriter.NewWriter(stdio.Out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "CLIENT ID\tNAME\tSCOPES\tTENANT\tCREATED\tREVOKED")
				for _, c := range cs {
					revoked := ""
					if !c.RevokedAt.IsZero() {
						revoked = c.RevokedAt.Format(time.RFC3339)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Name, strings.Join(c.Scopes, ","), c.TenantID, c.CreatedAt.Format(time.RFC3339), revoked)
				}
				return tw.Flush()
			})
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newClientsRevokeCmd(stdio Stdio) *cobra.Command {
	var f storeFlags
	cmd := &cobra.Command{
		Use:   "revoke CLIENT_ID",
		Short: "Revoke a client: it gets no more tokens and its tokens stop working",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withOAuth(cmd, &f, stdio, func(srv *oauth.Server) error {
				if err := srv.RevokeClient(cmd.Context(), args[0]); err != nil {
					if errors.Is(err, oauth.ErrNotFound) {
						return &usageError{fmt.Errorf("no client has the ID %q (vigil clients list shows them)", args[0])}
					}
					return err
				}
				fmt.Fprintf(stdio.Out, "revoked %s\n", args[0])
				return nil
			})
		},
	}
	f.register(cmd)
	return cmd
}
