package cli

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-sec/vigil/internal/server"
	"github.com/vigil-sec/vigil/licensing"
)

// newRenameCmd makes `vigil tenants|products rename ID --name NAME`.
func newRenameCmd(stdio Stdio, what string) *cobra.Command {
	var (
		t      target
		name   string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "rename ID --name NAME",
		Short: "Rename a " + what,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := server.CheckLicensingName(name)
			if err != nil {
				return &usageError{fmt.Errorf("--%v", err)}
			}
			id := args[0]
			out, err := t.run(cmd, stdio, op{
				scope: server.ScopeLicensingAdmin, method: "PATCH", path: "/api/v1/" + what + "s/" + url.PathEscape(id), body: map[string]any{"name": n},
				local: func(ctx context.Context, l *local) (any, error) {
					s, err := l.licensing(ctx)
					if err != nil {
						return nil, err
					}
					if what == "tenant" {
						tn, err := s.RenameTenant(ctx, id, n)
						return tn, badInput(what+" "+id, err)
					}
					p, err := s.RenameProduct(ctx, id, n)
					if err != nil {
						return nil, badInput(what+" "+id, err)
					}
					return server.WithSchedule(ctx, l.db, p) // as PATCH /api/v1/products/{id} answers
				},
			})
			if err != nil {
				return err
			}
			if asJSON {
				return printRaw(stdio.Out, out)
			}
			fmt.Fprintf(stdio.Out, "%s %s renamed %q\n", what, id, n)
			return nil
		},
	}
	t.register(cmd)
	cmd.Flags().StringVar(&name, "name", "", "the new name (required)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the "+what+" as the API does")
	return cmd
}

func newEntitlementsUpdateCmd(stdio Stdio) *cobra.Command {
	var (
		t                 target
		seats             int
		expires           string
		lease             time.Duration
		features, counted []string
		noFeatures        bool
		asJSON            bool
	)
	cmd := &cobra.Command{
		Use:   "update ID [--seats N] [--expires DATE|never] [--lease 24h] [--feature K]... [--counted-feature K=N]...",
		Short: "Change an entitlement's seats, expiry, lease or features",
		Long: `Change an entitlement's terms; flags not given stay as they are. Its
activation code, tenant and product never change.

Fewer seats than are in use frees none: the active seats keep their leases and
no new seat is granted until the count is under the new limit. --feature and
--counted-feature replace every feature; --no-features removes them all.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var c licensing.EntitlementChange
			fl := cmd.Flags()
			if fl.Changed("seats") {
				if err := server.CheckSeats(seats); err != nil {
					return &usageError{fmt.Errorf("--%v", err)}
				}
				c.Seats = &seats
			}
			if fl.Changed("expires") {
				var t time.Time
				if expires != "never" {
					var err error
					if t, err = parseExpiry(expires); err != nil {
						return &usageError{err}
					}
					if t.IsZero() {
						return &usageError{errors.New(`--expires: want a date, an RFC 3339 time or "never"`)}
					}
					if err := server.CheckExpiry(t, time.Now()); err != nil {
						return &usageError{fmt.Errorf("--expires %s: %v", expires, err)}
					}
				}
				c.ExpiresAt = &t
			}
			if fl.Changed("lease") {
				if err := server.CheckLease(lease); err != nil || lease == 0 {
					return &usageError{fmt.Errorf("--lease %v: want a whole number of seconds, at least 1s", lease)}
				}
				c.Lease = &lease
			}
			switch {
			case noFeatures && (len(features) > 0 || len(counted) > 0):
				return &usageError{errors.New("--no-features and --feature/--counted-feature: choose one")}
			case noFeatures:
				c.Features = map[string]licensing.Feature{}
			case len(features) > 0 || len(counted) > 0:
				var err error
				if c.Features, err = parseFeatures(features, counted); err != nil {
					return &usageError{err}
				}
			}
			if c.Seats == nil && c.ExpiresAt == nil && c.Lease == nil && c.Features == nil {
				return &usageError{errors.New("nothing to change: give --seats, --expires, --lease or features")}
			}
			body := map[string]any{}
			if c.Seats != nil {
				body["seats"] = *c.Seats
			}
			if c.ExpiresAt != nil {
				body["expires_at"] = nil // never
				if !c.ExpiresAt.IsZero() {
					body["expires_at"] = *c.ExpiresAt
				}
			}
			if c.Lease != nil {
				body["lease_seconds"] = int64(*c.Lease / time.Second)
			}
			if c.Features != nil {
				body["features"] = c.Features
			}
			id := args[0]
			out, err := t.run(cmd, stdio, op{
				scope: server.ScopeLicensingAdmin, method: "PATCH", path: "/api/v1/entitlements/" + url.PathEscape(id), body: body,
				local: onLicensing(func(ctx context.Context, s *licensing.Service) (any, error) {
					e, err := s.UpdateEntitlement(ctx, id, c)
					return e, badInput("entitlement "+id, err)
				}),
			})
			if err != nil {
				return err
			}
			return printObject(stdio, out, asJSON, "entitlement", func(e licensing.Entitlement) {
				exp := "never"
				if !e.ExpiresAt.IsZero() {
					exp = e.ExpiresAt.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(stdio.Out, "entitlement %s: %d seats, expires %s, lease %v, %d features\n",
					e.ID, e.Seats, exp, time.Duration(e.LeaseSeconds)*time.Second, len(e.Features))
			})
		},
	}
	t.register(cmd)
	fl := cmd.Flags()
	fl.IntVar(&seats, "seats", 0, "seats: activations live at once")
	fl.StringVar(&expires, "expires", "", `expiry: a date, the last valid day (it ends at 00:00 UTC the next day), an RFC 3339 time, or "never"`)
	fl.DurationVar(&lease, "lease", 0, "lease of an activation without a refresh")
	fl.StringArrayVar(&features, "feature", nil, "a boolean feature KEY; repeatable; replaces every feature")
	fl.StringArrayVar(&counted, "counted-feature", nil, "a counted feature KEY=LIMIT; repeatable; replaces every feature")
	fl.BoolVar(&noFeatures, "no-features", false, "remove every feature")
	fl.BoolVar(&asJSON, "json", false, "print the entitlement as the API does")
	return cmd
}
