package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-sec/vigil/internal/server"
	"github.com/vigil-sec/vigil/licensing"
)

// newLicensingCmds returns the licensing platform's commands: tenants,
// products and entitlements. Their --json prints what the Management API
// answers for the same object.
func newLicensingCmds(stdio Stdio) []*cobra.Command {
	group := func(use, short string, subs ...*cobra.Command) *cobra.Command {
		cmd := &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs}
		cmd.AddCommand(subs...)
		for _, c := range cmd.Commands() {
			c.Args = wrapArgs(c.Args)
		}
		return cmd
	}
	return []*cobra.Command{
		group("tenants", "Manage the licensing platform's tenants (customers)",
			newTenantsCreateCmd(stdio), newTenantsListCmd(stdio),
			newRenameCmd(stdio, "tenant", func(s *licensing.Service, ctx context.Context, id, name string) (any, error) {
				return s.RenameTenant(ctx, id, name)
			}),
			newStatusCmd(stdio, "tenants", "suspend", "Suspend a tenant: none of its entitlements activates or refreshes",
				func(s *licensing.Service) (func(*cobra.Command, string) error, func(*cobra.Command, string) (any, error)) {
					return func(c *cobra.Command, id string) error { return s.SuspendTenant(c.Context(), id) },
						func(c *cobra.Command, id string) (any, error) { return s.GetTenant(c.Context(), id) }
				}),
			newStatusCmd(stdio, "tenants", "resume", "Make a suspended tenant active again",
				func(s *licensing.Service) (func(*cobra.Command, string) error, func(*cobra.Command, string) (any, error)) {
					return func(c *cobra.Command, id string) error { return s.ResumeTenant(c.Context(), id) },
						func(c *cobra.Command, id string) (any, error) { return s.GetTenant(c.Context(), id) }
				})),
		group("products", "Manage the licensed products",
			newProductsCreateCmd(stdio), newProductsListCmd(stdio),
			newRenameCmd(stdio, "product", func(s *licensing.Service, ctx context.Context, id, name string) (any, error) {
				return s.RenameProduct(ctx, id, name)
			}),
			newProductsUpdateCmd(stdio)), // products_update.go: through the server
		group("entitlements", "Manage entitlements: a tenant's seats of a product, and their activation codes",
			newEntitlementsCreateCmd(stdio), newEntitlementsListCmd(stdio), newEntitlementsUpdateCmd(stdio),
			newStatusCmd(stdio, "entitlements", "suspend", "Suspend an entitlement: it neither activates nor refreshes",
				func(s *licensing.Service) (func(*cobra.Command, string) error, func(*cobra.Command, string) (any, error)) {
					return func(c *cobra.Command, id string) error { return s.SuspendEntitlement(c.Context(), id) },
						func(c *cobra.Command, id string) (any, error) { return s.GetEntitlement(c.Context(), id) }
				}),
			newStatusCmd(stdio, "entitlements", "resume", "Make a suspended entitlement active again",
				func(s *licensing.Service) (func(*cobra.Command, string) error, func(*cobra.Command, string) (any, error)) {
					return func(c *cobra.Command, id string) error { return s.ResumeEntitlement(c.Context(), id) },
						func(c *cobra.Command, id string) (any, error) { return s.GetEntitlement(c.Context(), id) }
				})),
	}
}

// withLicensing opens the store and the licensing service. The service's
// secret comes from the installation's seal key, so codes made here work
// in `vigil serve` on the same store with the same key.
func withLicensing(cmd *cobra.Command, f *storeFlags, stdio Stdio, fn func(*licensing.Service) error) error {
	ctx := cmd.Context()
	log := slog.New(slog.NewTextHandler(stdio.Err, &slog.HandlerOptions{Level: slog.LevelWarn}))
	db, err := f.openStore(ctx, log)
	if err != nil {
		return err
	}
	defer db.Close()
	key, err := f.sealKey()
	if err != nil {
		return err
	}
	cfg := licensing.DefaultConfig()
	cfg.Logger = log
	if cfg.Secret, err = server.LicensingSecret(key); err != nil {
		return err
	}
	svc, err := licensing.New(ctx, db, cfg)
	if err != nil {
		return err
	}
	return fn(svc)
}

// printJSON prints v as the API does (httpx.WriteJSON): compact, one line.
func printJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// badInput turns the licensing service's refusals of user input (an
// unknown ID, an invalid value) into usage errors (exit 2) prefixed with
// what names it.
func badInput(what string, err error) error {
	if errors.Is(err, licensing.ErrNotFound) || errors.Is(err, licensing.ErrInvalid) || errors.Is(err, licensing.ErrConflict) {
		msg := err.Error()
		for _, p := range []string{"licensing: ", "create tenant: ", "create product: ", "create entitlement: "} {
			msg = strings.TrimPrefix(msg, p)
		}
		return &usageError{fmt.Errorf("%s: %s", what, msg)}
	}
	return err
}

func newTenantsCreateCmd(stdio Stdio) *cobra.Command {
	var (
		f      storeFlags
		name   string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "create --name NAME",
		Short: "Make a tenant and print its ID",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := server.CheckLicensingName(name)
			if err != nil {
				return &usageError{fmt.Errorf("--%v", err)}
			}
			return withLicensing(cmd, &f, stdio, func(s *licensing.Service) error {
				t, err := s.CreateTenant(cmd.Context(), n)
				if err != nil {
					return badInput("--name", err)
				}
				if asJSON {
					return printJSON(stdio.Out, t)
				}
				fmt.Fprintf(stdio.Out, "tenant %s (%s)\n", t.ID, t.Name)
				return nil
			})
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&name, "name", "", "the tenant's name (required)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the tenant as the API does")
	return cmd
}

func newTenantsListCmd(stdio Stdio) *cobra.Command {
	var (
		f      storeFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the tenants, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withLicensing(cmd, &f, stdio, func(s *licensing.Service) error {
				ts, err := allPages(func(p licensing.Page) ([]licensing.Tenant, string, error) { return s.ListTenants(cmd.Context(), p) })
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(stdio.Out, server.LicensingList("tenants", ts, ""))
				}
				tw := tabwriter.NewWriter(stdio.Out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tNAME\tSTATUS\tCREATED")
				for _, t := range ts {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Status, t.CreatedAt.UTC().Format(time.RFC3339))
				}
				return tw.Flush()
			})
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"tenants": [...], "next_cursor": ""} as the API does`)
	return cmd
}

func newProductsCreateCmd(stdio Stdio) *cobra.Command {
	var (
		f        storeFlags
		id, name string
		asJSON   bool
	)
	cmd := &cobra.Command{
		Use:   "create --name NAME [--id ID]",
		Short: "Make a product and print its ID (what the application sends as N-ProductId)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := server.CheckLicensingName(name)
			if err != nil {
				return &usageError{fmt.Errorf("--%v", err)}
			}
			if err := server.CheckProductID(id); err != nil {
				return &usageError{fmt.Errorf("--%v", err)}
			}
			return withLicensing(cmd, &f, stdio, func(s *licensing.Service) error {
				p, err := s.CreateProduct(cmd.Context(), id, n)
				if err != nil {
					return badInput("--id", err)
				}
				if asJSON {
					return printJSON(stdio.Out, p)
				}
				fmt.Fprintf(stdio.Out, "product %s (%s)\n", p.ID, p.Name)
				return nil
			})
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&name, "name", "", "the product's name (required)")
	cmd.Flags().StringVar(&id, "id", "", "the product ID applications embed (default: one made by Vigil)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the product as the API does")
	return cmd
}

func newProductsListCmd(stdio Stdio) *cobra.Command {
	var (
		f      storeFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the products, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withLicensing(cmd, &f, stdio, func(s *licensing.Service) error {
				ps, err := allPages(func(p licensing.Page) ([]licensing.Product, string, error) { return s.ListProducts(cmd.Context(), p) })
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(stdio.Out, server.LicensingList("products", ps, ""))
				}
				tw := tabwriter.NewWriter(stdio.Out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tNAME\tCREATED")
				for _, p := range ps {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", p.ID, p.Name, p.CreatedAt.UTC().Format(time.RFC3339))
				}
				return tw.Flush()
			})
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"products": [...], "next_cursor": ""} as the API does`)
	return cmd
}

// parseExpiry reads --expires: a date or an RFC 3339 time. A date is
// the last day on which the entitlement is valid: it expires when that
// day ends (the next day's 00:00 UTC), the rule waivers follow too, so
// that "--expires 2027-01-31" means the same everywhere in Vigil.
func parseExpiry(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t.AddDate(0, 0, 1), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--expires %q: want a date (2027-01-31) or an RFC 3339 time", s)
	}
	return t.UTC(), nil
}

func newEntitlementsCreateCmd(stdio Stdio) *cobra.Command {
	var (
		f                 storeFlags
		tenant, product   string
		seats             int
		expires           string
		lease             time.Duration
		features, counted []string
		asJSON            bool
	)
	cmd := &cobra.Command{
		Use:   "create --tenant ID --product ID --seats N [--expires DATE] [--lease 24h]",
		Short: "Make an entitlement and print its activation code (shown once)",
		Long: `Make an entitlement: the tenant's seats of the product. Its activation code
is printed once: Vigil keeps only a keyed hash of it.

--expires takes a date (the last day the entitlement is valid: it expires when
that day ends, at the next 00:00 UTC, as waivers do) or an
RFC 3339 time; --lease is how long an activation lasts without a refresh
(whole seconds; default 24h).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ne := licensing.NewEntitlement{TenantID: strings.TrimSpace(tenant), ProductID: strings.TrimSpace(product), Seats: seats, Lease: lease}
			switch {
			case ne.TenantID == "":
				return &usageError{errors.New("--tenant is required")}
			case ne.ProductID == "":
				return &usageError{errors.New("--product is required")}
			}
			if err := server.CheckSeats(seats); err != nil {
				return &usageError{fmt.Errorf("--%v", err)}
			}
			if err := server.CheckLease(lease); err != nil {
				return &usageError{fmt.Errorf("--%v", err)}
			}
			var err error
			if ne.ExpiresAt, err = parseExpiry(expires); err != nil {
				return &usageError{err}
			}
			if err := server.CheckExpiry(ne.ExpiresAt, time.Now()); err != nil {
				return &usageError{fmt.Errorf("--expires %s: %v", expires, err)}
			}
			if ne.Features, err = parseFeatures(features, counted); err != nil {
				return &usageError{err}
			}
			return withLicensing(cmd, &f, stdio, func(s *licensing.Service) error {
				ctx := cmd.Context()
				if _, err := s.GetTenant(ctx, ne.TenantID); err != nil {
					return badInput("--tenant", err)
				}
				if _, err := s.GetProduct(ctx, ne.ProductID); err != nil {
					return badInput("--product", err)
				}
				ce, err := s.CreateEntitlement(ctx, ne)
				if err != nil {
					return badInput("entitlement", err)
				}
				if asJSON {
					return printJSON(stdio.Out, ce)
				}
				fmt.Fprintf(stdio.Out, "entitlement:     %s\nactivation code: %s\n(the code is shown only now)\n", ce.ID, ce.ActivationCode)
				return nil
			})
		},
	}
	f.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&tenant, "tenant", "", "tenant ID (required)")
	fl.StringVar(&product, "product", "", "product ID (required)")
	fl.IntVar(&seats, "seats", 0, "seats: activations live at once (required)")
	fl.StringVar(&expires, "expires", "", "expiry: a date (2027-01-31: valid through that day, UTC) or an RFC 3339 time (default: never)")
	fl.DurationVar(&lease, "lease", 0, "lease of an activation without a refresh (default 24h)")
	fl.StringArrayVar(&features, "feature", nil, "a boolean feature KEY; repeatable")
	fl.StringArrayVar(&counted, "counted-feature", nil, "a counted feature KEY=LIMIT; repeatable")
	fl.BoolVar(&asJSON, "json", false, `print {"id", "activation_code", …} as the API does`)
	return cmd
}

// parseFeatures reads --feature KEY and --counted-feature KEY=LIMIT.
func parseFeatures(boolean, counted []string) (map[string]licensing.Feature, error) {
	out := map[string]licensing.Feature{}
	for _, k := range boolean {
		out[k] = licensing.Feature{Kind: licensing.FeatureBoolean}
	}
	for _, kv := range counted {
		k, v, ok := strings.Cut(kv, "=")
		var n int
		if _, err := fmt.Sscanf(v, "%d", &n); !ok || err != nil || n < 1 || fmt.Sprint(n) != v {
			return nil, fmt.Errorf("--counted-feature %q: want KEY=LIMIT with a positive LIMIT", kv)
		}
		out[k] = licensing.Feature{Kind: licensing.FeatureCounted, Limit: n}
	}
	for k := range out {
		if k == "" || len(k) > 64 || strings.ContainsAny(k, "/ \t\r\n?#") {
			return nil, fmt.Errorf("feature key %q: want 1 to 64 characters without '/', '?', '#' or spaces", k)
		}
	}
	return out, nil
}

func newEntitlementsListCmd(stdio Stdio) *cobra.Command {
	var (
		f      storeFlags
		tenant string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "list [--tenant ID]",
		Short: "List the entitlements, oldest first (never their activation codes)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withLicensing(cmd, &f, stdio, func(s *licensing.Service) error {
				es, err := allPages(func(p licensing.Page) ([]licensing.Entitlement, string, error) {
					return s.ListEntitlements(cmd.Context(), tenant, p)
				})
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(stdio.Out, server.LicensingList("entitlements", es, ""))
				}
				tw := tabwriter.NewWriter(stdio.Out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tTENANT\tPRODUCT\tSEATS\tEXPIRES\tLEASE\tSTATUS")
				for _, e := range es {
					exp := "never"
					if !e.ExpiresAt.IsZero() {
						exp = e.ExpiresAt.UTC().Format(time.RFC3339)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%v\t%s\n", e.ID, e.TenantID, e.ProductID, e.Seats, exp,
						time.Duration(e.LeaseSeconds)*time.Second, e.Status)
				}
				return tw.Flush()
			})
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&tenant, "tenant", "", "only this tenant's entitlements")
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"entitlements": [...], "next_cursor": ""} as the API does`)
	return cmd
}

// newStatusCmd makes `vigil KIND suspend|resume ID`, which prints the
// object afterwards as POST /api/v1/KIND/{id}/suspend|resume answers it.
func newStatusCmd(stdio Stdio, kind, verb, short string,
	ops func(*licensing.Service) (set func(*cobra.Command, string) error, get func(*cobra.Command, string) (any, error))) *cobra.Command {
	var (
		f      storeFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   verb + " ID",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withLicensing(cmd, &f, stdio, func(s *licensing.Service) error {
				set, get := ops(s)
				if err := set(cmd, args[0]); err != nil {
					return badInput("ID", err)
				}
				v, err := get(cmd, args[0])
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(stdio.Out, v)
				}
				fmt.Fprintf(stdio.Out, "%s %s: %sed\n", strings.TrimSuffix(kind, "s"), args[0], strings.TrimSuffix(verb, "e"))
				return nil
			})
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the "+strings.TrimSuffix(kind, "s")+" as the API does")
	return cmd
}

// allPages reads a paginated list to its end, for the commands that print
// every item.
func allPages[T any](list func(licensing.Page) ([]T, string, error)) ([]T, error) {
	var all []T
	p := licensing.Page{Limit: licensing.MaxPageLimit}
	for {
		items, next, err := list(p)
		if err != nil {
			return nil, err
		}
		all = append(all, items...)
		if next == "" {
			return all, nil
		}
		p.Cursor = next
	}
}
