package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-sec/vigil/internal/server"
	"github.com/vigil-sec/vigil/licensing"
)

// newRenameCmd makes `vigil tenants|products rename ID --name NAME`.
func newRenameCmd(stdio Stdio, what string, rename func(s *licensing.Service, ctx context.Context, id, name string) (any, error)) *cobra.Command {
	var (
		f      storeFlags
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
			return withLicensing(cmd, &f, stdio, func(s *licensing.Service) error {
				v, err := rename(s, cmd.Context(), args[0], n)
				if err != nil {
					return badInput(what+" "+args[0], err)
				}
				if asJSON {
					return printJSON(stdio.Out, v)
				}
				fmt.Fprintf(stdio.Out, "%s %s renamed %q\n", what, args[0], n)
				return nil
			})
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&name, "name", "", "the new name (required)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the "+what+" as the API does")
	return cmd
}

func newEntitlementsUpdateCmd(stdio Stdio) *cobra.Command {
	var (
		f                 storeFlags
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
			return withLicensing(cmd, &f, stdio, func(s *licensing.Service) error {
				e, err := s.UpdateEntitlement(cmd.Context(), args[0], c)
				if err != nil {
					return badInput("entitlement "+args[0], err)
				}
				if asJSON {
					return printJSON(stdio.Out, e)
				}
				exp := "never"
				if !e.ExpiresAt.IsZero() {
					exp = e.ExpiresAt.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(stdio.Out, "entitlement %s: %d seats, expires %s, lease %v, %d features\n",
					e.ID, e.Seats, exp, time.Duration(e.LeaseSeconds)*time.Second, len(e.Features))
				return nil
			})
		},
	}
	f.register(cmd)
	fl := cmd.Flags()
	fl.IntVar(&seats, "seats", 0, "seats: activations live at once")
	fl.StringVar(&expires, "expires", "", `expiry: a date (valid through that day, UTC), an RFC 3339 time, or "never"`)
	fl.DurationVar(&lease, "lease", 0, "lease of an activation without a refresh")
	fl.StringArrayVar(&features, "feature", nil, "a boolean feature KEY; repeatable; replaces every feature")
	fl.StringArrayVar(&counted, "counted-feature", nil, "a counted feature KEY=LIMIT; repeatable; replaces every feature")
	fl.BoolVar(&noFeatures, "no-features", false, "remove every feature")
	fl.BoolVar(&asJSON, "json", false, "print the entitlement as the API does")
	return cmd
}
