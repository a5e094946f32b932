package cli

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-sec/vigil/reports"
)

// purposeReports is the --purpose of the report-signing keys, the only
// key ring `vigil keys` manages so far.
const purposeReports = "reports"

func newKeysCmd(stdio Stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Manage the server's signing keys (report-signing keys)",
		Long: `Manage the keys the server signs with. --purpose reports: the ECDSA P-256
keys that sign audit report bundles, published without authentication at
/.well-known/vigil/report-keys (JWKS), /.well-known/vigil/report-keys.pem and
/.well-known/vigil/report-keys/{kid}.pem. The private keys are stored sealed
under the installation's seal key; run these commands where vigil serve's
--data (or --database and --seal-key-file) are.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newKeysRotateCmd(stdio), newKeysListCmd(stdio))
	for _, c := range cmd.Commands() {
		c.Args = wrapArgs(c.Args)
	}
	return cmd
}

// keysFlags are the flags of a keys command: the store and the purpose.
type keysFlags struct {
	store   storeFlags
	purpose string
}

func (f *keysFlags) register(cmd *cobra.Command) {
	f.store.register(cmd)
	cmd.Flags().StringVar(&f.purpose, "purpose", "", "which keys: reports (required)")
}

// withKeyRing checks --purpose, opens the store and the key ring.
func withKeyRing(cmd *cobra.Command, f *keysFlags, stdio Stdio, fn func(*reports.KeyRing) error) error {
	if f.purpose != purposeReports {
		return &usageError{fmt.Errorf("--purpose %q: want --purpose %s", f.purpose, purposeReports)}
	}
	db, err := f.store.openStore(cmd.Context(), slog.New(slog.NewTextHandler(stdio.Err, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return err
	}
	defer db.Close()
	key, err := f.store.sealKey()
	if err != nil {
		return err
	}
	ring, err := reports.NewKeyRing(db, key)
	if err != nil {
		return err
	}
	return fn(ring)
}

func newKeysRotateCmd(stdio Stdio) *cobra.Command {
	var (
		f      keysFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "rotate --purpose reports",
		Short: "Make a new current signing key and print its key ID; older public keys keep verifying",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withKeyRing(cmd, &f, stdio, func(ring *reports.KeyRing) error {
				k, err := ring.Rotate(cmd.Context())
				if err != nil {
					return err
				}
				if asJSON {
					return json.NewEncoder(stdio.Out).Encode(k)
				}
				fmt.Fprintln(stdio.Out, k.ID)
				return nil
			})
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"kid", "current", "created_at"}`)
	return cmd
}

func newKeysListCmd(stdio Stdio) *cobra.Command {
	var (
		f      keysFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "list --purpose reports",
		Short: "List the signing keys, the current one first, then the retired ones",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withKeyRing(cmd, &f, stdio, func(ring *reports.KeyRing) error {
				ks, err := ring.Keys(cmd.Context())
				if err != nil {
					return err
				}
				if asJSON {
					return json.NewEncoder(stdio.Out).Encode(map[string]any{"keys": ks, "next_cursor": ""})
				}
				if len(ks) == 0 {
					fmt.Fprintln(stdio.Err, "no report-signing key yet: one is made on first need, or by vigil keys rotate --purpose reports")
					return nil
				}
				tw := tabwriter.NewWriter(stdio.Out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "KEY ID\tSTATUS\tCREATED\tRETIRED")
				for _, k := range ks {
					status, retired := "current", "-"
					if !k.Current {
						status, retired = "retired", k.RetiredAt.Format(time.RFC3339)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.ID, status, k.CreatedAt.Format(time.RFC3339), retired)
				}
				return tw.Flush()
			})
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"keys": [{"kid", "current", "created_at", "retired_at"}]}`)
	return cmd
}
