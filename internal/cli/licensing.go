package cli

import (
	"context"
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
	"github.com/vigil-sec/vigil/licensing"
)

// newLicensingCmds returns the licensing platform's commands: tenants,
// products and entitlements, on the store or through a server (target.go).
// Their --json prints what the Management API answers for the same
// object.
func newLicensingCmds(stdio Stdio) []*cobra.Command {
	group := func(use, short string, subs ...*cobra.Command) *cobra.Command {
		cmd := &cobra.Command{Use: use, Short: short, Long: short + ".\n\n" + targetHelp, Args: cobra.NoArgs}
		cmd.AddCommand(subs...)
		for _, c := range cmd.Commands() {
			c.Args = wrapArgs(c.Args)
		}
		return cmd
	}
	return []*cobra.Command{
		group("tenants", "Manage the licensing platform's tenants (customers)",
			newTenantsCreateCmd(stdio), newTenantsListCmd(stdio), newRenameCmd(stdio, "tenant"),
			newStatusCmd(stdio, "tenants", "suspend", "Suspend a tenant: none of its entitlements activates or refreshes"),
			newStatusCmd(stdio, "tenants", "resume", "Make a suspended tenant active again")),
		group("products", "Manage the licensed products",
			newProductsCreateCmd(stdio), newProductsListCmd(stdio), newRenameCmd(stdio, "product"),
			newProductsUpdateCmd(stdio)), // products_update.go: through the server
		group("entitlements", "Manage entitlements: a tenant's seats of a product, and their activation codes",
			newEntitlementsCreateCmd(stdio), newEntitlementsListCmd(stdio), newEntitlementsUpdateCmd(stdio),
			newStatusCmd(stdio, "entitlements", "suspend", "Suspend an entitlement: it neither activates nor refreshes"),
			newStatusCmd(stdio, "entitlements", "resume", "Make a suspended entitlement active again")),
	}
}

// targetHelp is the administration commands' word on their transports.
const targetHelp = `These commands work through a running server's Management API when one is
set (vigil login, or $VIGIL_SERVER with $VIGIL_CLIENT_ID and
$VIGIL_CLIENT_SECRET, or --server), or on the installation's store with
--data DIR (or --database URL and --seal-key-file), as vigil serve opens it;
with neither, on ./vigil-data when it holds a store. The arguments and the
output are the same either way; --json prints the API's JSON.`

// onLicensing is an op's local half that needs the licensing service.
func onLicensing(fn func(ctx context.Context, s *licensing.Service) (any, error)) func(context.Context, *local) (any, error) {
	return func(ctx context.Context, l *local) (any, error) {
		s, err := l.licensing(ctx)
		if err != nil {
			return nil, err
		}
		return fn(ctx, s)
	}
}

// printObject prints an answer: as it is with --json, else decoded into
// a T and told by text.
func printObject[T any](stdio Stdio, out []byte, asJSON bool, what string, text func(T)) error {
	if asJSON {
		return printRaw(stdio.Out, out)
	}
	var v T
	if err := decode(out, what, &v); err != nil {
		return err
	}
	text(v)
	return nil
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
		t      target
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
			out, err := t.run(cmd, stdio, op{
				scope: server.ScopeLicensingAdmin, method: "POST", path: "/api/v1/tenants", body: map[string]any{"name": n},
				local: onLicensing(func(ctx context.Context, s *licensing.Service) (any, error) {
					tn, err := s.CreateTenant(ctx, n)
					return tn, badInput("--name", err)
				}),
			})
			if err != nil {
				return err
			}
			return printObject(stdio, out, asJSON, "tenant", func(tn licensing.Tenant) {
				fmt.Fprintf(stdio.Out, "tenant %s (%s)\n", tn.ID, tn.Name)
			})
		},
	}
	t.register(cmd)
	cmd.Flags().StringVar(&name, "name", "", "the tenant's name (required)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the tenant as the API does")
	return cmd
}

func newTenantsListCmd(stdio Stdio) *cobra.Command {
	var (
		t      target
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the tenants, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			all, err := t.runList(cmd, stdio, op{
				scope: server.ScopeLicensingRead, method: "GET", path: "/api/v1/tenants", items: "tenants",
				local: onLicensing(func(ctx context.Context, s *licensing.Service) (any, error) {
					return allPages(func(p licensing.Page) ([]licensing.Tenant, string, error) { return s.ListTenants(ctx, p) })
				}),
			})
			if err != nil {
				return err
			}
			if asJSON {
				return printItems(stdio, "tenants", all)
			}
			tw := tabwriter.NewWriter(stdio.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tSTATUS\tCREATED")
			for _, raw := range all {
				var tn licensing.Tenant
				if err := decode(raw, "tenant", &tn); err != nil {
					return err
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", tn.ID, tn.Name, tn.Status, tn.CreatedAt.UTC().Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	t.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"tenants": [...], "next_cursor": ""} as the API does`)
	return cmd
}

func newProductsCreateCmd(stdio Stdio) *cobra.Command {
	var (
		t        target
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
			out, err := t.run(cmd, stdio, op{
				scope: server.ScopeLicensingAdmin, method: "POST", path: "/api/v1/products", body: map[string]any{"id": id, "name": n},
				local: onLicensing(func(ctx context.Context, s *licensing.Service) (any, error) {
					p, err := s.CreateProduct(ctx, id, n)
					return p, badInput("--id", err)
				}),
			})
			if err != nil {
				return err
			}
			return printObject(stdio, out, asJSON, "product", func(p licensing.Product) {
				fmt.Fprintf(stdio.Out, "product %s (%s)\n", p.ID, p.Name)
			})
		},
	}
	t.register(cmd)
	cmd.Flags().StringVar(&name, "name", "", "the product's name (required)")
	cmd.Flags().StringVar(&id, "id", "", "the product ID applications embed (default: one made by Vigil)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the product as the API does")
	return cmd
}

func newProductsListCmd(stdio Stdio) *cobra.Command {
	var (
		t      target
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the products, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			all, err := t.runList(cmd, stdio, op{
				scope: server.ScopeLicensingRead, method: "GET", path: "/api/v1/products", items: "products",
				local: onLicensing(func(ctx context.Context, s *licensing.Service) (any, error) {
					return allPages(func(p licensing.Page) ([]licensing.Product, string, error) { return s.ListProducts(ctx, p) })
				}),
			})
			if err != nil {
				return err
			}
			if asJSON {
				return printItems(stdio, "products", all)
			}
			tw := tabwriter.NewWriter(stdio.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tCREATED")
			for _, raw := range all {
				var p licensing.Product
				if err := decode(raw, "product", &p); err != nil {
					return err
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", p.ID, p.Name, p.CreatedAt.UTC().Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	t.register(cmd)
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
		t                 target
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

--expires takes a date, the last day the entitlement is valid (it expires
when that day ends, at 00:00 UTC the next day, as waivers do), or an RFC 3339
time; --lease is how long an activation lasts without a refresh
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
			body := map[string]any{"tenant_id": ne.TenantID, "product_id": ne.ProductID, "seats": ne.Seats, "features": ne.Features}
			if !ne.ExpiresAt.IsZero() {
				body["expires_at"] = ne.ExpiresAt
			}
			if lease != 0 {
				body["lease_seconds"] = int64(lease / time.Second)
			}
			out, err := t.run(cmd, stdio, op{
				scope: server.ScopeLicensingAdmin, method: "POST", path: "/api/v1/entitlements", body: body,
				local: onLicensing(func(ctx context.Context, s *licensing.Service) (any, error) {
					if _, err := s.GetTenant(ctx, ne.TenantID); err != nil {
						return nil, badInput("--tenant", err)
					}
					if _, err := s.GetProduct(ctx, ne.ProductID); err != nil {
						return nil, badInput("--product", err)
					}
					ce, err := s.CreateEntitlement(ctx, ne)
					return ce, badInput("entitlement", err)
				}),
			})
			if err != nil {
				return err
			}
			return printObject(stdio, out, asJSON, "entitlement", func(ce licensing.CreatedEntitlement) {
				fmt.Fprintf(stdio.Out, "entitlement:     %s\nactivation code: %s\n(the code is shown only now)\n", ce.ID, ce.ActivationCode)
			})
		},
	}
	t.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&tenant, "tenant", "", "tenant ID (required)")
	fl.StringVar(&product, "product", "", "product ID (required)")
	fl.IntVar(&seats, "seats", 0, "seats: activations live at once (required)")
	fl.StringVar(&expires, "expires", "", "expiry: a date, the last valid day (2027-01-31: it ends at 2027-02-01T00:00:00Z), or an RFC 3339 time (default: never)")
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
		t      target
		tenant string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "list [--tenant ID]",
		Short: "List the entitlements, oldest first (never their activation codes)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			path := "/api/v1/entitlements"
			if tenant != "" {
				path += "?tenant_id=" + url.QueryEscape(tenant)
			}
			all, err := t.runList(cmd, stdio, op{
				scope: server.ScopeLicensingRead, method: "GET", path: path, items: "entitlements",
				local: onLicensing(func(ctx context.Context, s *licensing.Service) (any, error) {
					return allPages(func(p licensing.Page) ([]licensing.Entitlement, string, error) {
						return s.ListEntitlements(ctx, tenant, p)
					})
				}),
			})
			if err != nil {
				return err
			}
			if asJSON {
				return printItems(stdio, "entitlements", all)
			}
			tw := tabwriter.NewWriter(stdio.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTENANT\tPRODUCT\tSEATS\tEXPIRES\tLEASE\tSTATUS")
			for _, raw := range all {
				var e licensing.Entitlement
				if err := decode(raw, "entitlement", &e); err != nil {
					return err
				}
				exp := "never"
				if !e.ExpiresAt.IsZero() {
					exp = e.ExpiresAt.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%v\t%s\n", e.ID, e.TenantID, e.ProductID, e.Seats, exp,
					time.Duration(e.LeaseSeconds)*time.Second, e.Status)
			}
			return tw.Flush()
		},
	}
	t.register(cmd)
	cmd.Flags().StringVar(&tenant, "tenant", "", "only this tenant's entitlements")
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"entitlements": [...], "next_cursor": ""} as the API does`)
	return cmd
}

// newStatusCmd makes `vigil KIND suspend|resume ID`, which prints the
// object afterwards as POST /api/v1/KIND/{id}/suspend|resume answers it.
func newStatusCmd(stdio Stdio, kind, verb, short string) *cobra.Command {
	var (
		t      target
		asJSON bool
	)
	one := strings.TrimSuffix(kind, "s")
	cmd := &cobra.Command{
		Use:   verb + " ID",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			out, err := t.run(cmd, stdio, op{
				scope: server.ScopeLicensingAdmin, method: "POST", path: "/api/v1/" + kind + "/" + url.PathEscape(id) + "/" + verb,
				local: onLicensing(func(ctx context.Context, s *licensing.Service) (any, error) {
					set, get := statusOps(s, kind, verb == "suspend")
					if err := set(ctx, id); err != nil {
						return nil, badInput("ID", err)
					}
					return get(ctx, id)
				}),
			})
			if err != nil {
				return err
			}
			if asJSON {
				return printRaw(stdio.Out, out)
			}
			fmt.Fprintf(stdio.Out, "%s %s: %sed\n", one, id, strings.TrimSuffix(verb, "e"))
			return nil
		},
	}
	t.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the "+one+" as the API does")
	return cmd
}

// statusOps are the service's calls that suspend or resume a tenant or
// an entitlement, and read it back.
func statusOps(s *licensing.Service, kind string, suspend bool) (set func(context.Context, string) error, get func(context.Context, string) (any, error)) {
	if kind == "tenants" {
		set = s.ResumeTenant
		if suspend {
			set = s.SuspendTenant
		}
		return set, func(ctx context.Context, id string) (any, error) { return s.GetTenant(ctx, id) }
	}
	set = s.ResumeEntitlement
	if suspend {
		set = s.SuspendEntitlement
	}
	return set, func(ctx context.Context, id string) (any, error) { return s.GetEntitlement(ctx, id) }
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
