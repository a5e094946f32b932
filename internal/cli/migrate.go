package cli

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/vigil-sec/vigil/internal/jobs"
	"github.com/vigil-sec/vigil/internal/store"
)

// storeFlags name the installation's database: --data and --database.
type storeFlags struct {
	data        string
	database    string
	sealKeyFile string
}

func (f *storeFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.data, "data", "vigil-data", "data directory: the SQLite database, blobs, TLS certificate and keys")
	cmd.Flags().StringVar(&f.database, "database", "", "postgres://… to use PostgreSQL instead of SQLite in the data directory")
	cmd.Flags().StringVar(&f.sealKeyFile, "seal-key-file", "", "the installation's seal key, which keeps its secrets out of the database (default DATA/"+sealKeyFile+"; serve makes it on first start; share it between hosts)")
}

// dsn is the database to open: --database, else DATA/vigil.db.
func (f *storeFlags) dsn() string {
	if f.database != "" {
		return f.database
	}
	return "sqlite:" + filepath.Join(f.data, "vigil.db")
}

// openStore opens the database and migrates the store and the job queue.
func (f *storeFlags) openStore(ctx context.Context, log *slog.Logger) (*store.DB, error) {
	db, err := store.Open(ctx, f.dsn(), store.WithMigrate(), store.WithLogger(log))
	if err != nil {
		return nil, err
	}
	if err := jobs.Migrate(ctx, db, log); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func newMigrateCmd(stdio Stdio) *cobra.Command {
	var f storeFlags
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply the database schema migrations (store and job queue); serve does it at start too",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			db, err := f.openStore(ctx, slog.New(slog.NewTextHandler(stdio.Err, nil)))
			if err != nil {
				return err
			}
			defer db.Close()
			applied, known, err := db.SchemaVersion(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdio.Out, "%s schema at version %d (this build knows %d); job queue migrated\n", db.Dialect(), applied, known)
			return nil
		},
	}
	f.register(cmd)
	return cmd
}
