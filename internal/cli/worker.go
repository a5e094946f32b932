package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-sec/vigil/internal/jobs"
	"github.com/vigil-sec/vigil/internal/server"
	"github.com/vigil-sec/vigil/internal/store"
)

type workerFlags struct {
	storeFlags
	insecure  []string
	logFormat string
	workers   int
	publicURL string
	queue     queueFlags
}

func newWorkerCmd(stdio Stdio) *cobra.Command {
	var f workerFlags
	cmd := &cobra.Command{
		Use:   "worker --database postgres://… [--data DIR]",
		Short: "Run scan workers only (no HTTP) against the PostgreSQL database of a vigil serve installation",
		Long: `Work scan jobs and scheduled rescans from the shared PostgreSQL job queue,
beside the workers of 'vigil serve'. It serves no HTTP.

Every host must see the same data directory (--data): the blobs (results,
SARIF, SBOMs) are files under DATA/blobs that serve reads back, and
DATA/seal.key must be the key serve made (or pass --seal-key-file). Put it
on shared storage (NFS or the like), or copy the key and mount the blobs
directory from shared storage.

A worker that dies in the middle of a scan is not noticed at once: the
queue's rescuer runs its scan again after --rescue-after (default 1h10m).
Give every process of an installation the same value.

SIGTERM or Ctrl-C drains: no new scans; running scans get a grace period,
then are cut off and retried by another worker.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runWorker(cmd.Context(), stdio, f)
		},
	}
	f.register(cmd)
	f.queue.register(cmd, "")
	fl := cmd.Flags()
	fl.StringArrayVar(&f.insecure, "insecure-registry", nil, "registry HOST[:PORT] reached over plain HTTP; repeatable")
	fl.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fl.IntVar(&f.workers, "workers", 0, "scans run at once in this process (default: the number of CPUs)")
	fl.StringVar(&f.publicURL, "public-url", "", "the --public-url of vigil serve: the base of the scan links in commit statuses posted from this host (none without it)")
	configurable(cmd, stdio, sharedFlags) // after every flag is registered
	return cmd
}

func runWorker(ctx context.Context, stdio Stdio, f workerFlags) error {
	switch {
	case !strings.HasPrefix(f.database, "postgres://") && !strings.HasPrefix(f.database, "postgresql://"):
		return &usageError{errors.New("worker needs --database postgres://…: the SQLite store of one host has its workers in serve")}
	case f.logFormat != "text" && f.logFormat != "json":
		return &usageError{fmt.Errorf("--log-format %q: want text or json", f.logFormat)}
	case f.workers < 0:
		return &usageError{fmt.Errorf("--workers %d is negative", f.workers)}
	}
	if err := f.queue.validate(jobs.DefaultConfig()); err != nil {
		return err
	}
	publicURL, err := checkPublicURL(f.publicURL)
	if err != nil {
		return err
	}
	var log *slog.Logger
	if f.logFormat == "json" {
		log = slog.New(slog.NewJSONHandler(stdio.Err, nil))
	} else {
		log = slog.New(slog.NewTextHandler(stdio.Err, nil))
	}
	keyFile := f.sealKeyFile
	if keyFile == "" {
		keyFile = filepath.Join(f.data, sealKeyFile)
	}
	key, err := os.ReadFile(keyFile)
	if errors.Is(err, fs.ErrNotExist) {
		return &usageError{fmt.Errorf("no seal key at %s: point --data at the data directory vigil serve uses (shared between hosts), or pass --seal-key-file", keyFile)}
	}
	if err != nil {
		return fmt.Errorf("seal key: %w", err)
	}
	db, err := f.openStore(ctx, log)
	if err != nil {
		return err
	}
	defer db.Close()
	blobs, err := store.NewBlobs(filepath.Join(f.data, "blobs"))
	if err != nil {
		return err
	}
	jcfg := jobs.DefaultConfig()
	if f.workers > 0 {
		jcfg.Workers = f.workers
	}
	jcfg.RescueAfter = f.queue.rescueAfter
	srv, err := server.New(ctx, server.Config{
		DB: db, Blobs: blobs, SealKey: key, Jobs: &jcfg,
		InsecureRegistries: f.insecure,
		RescanDays:         f.queue.rescanDays,
		Outbound:           f.queue.policy,
		PublicURL:          publicURL,
		Logger:             log,
	})
	if err != nil {
		return err
	}
	if err := srv.Start(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	fmt.Fprintf(stdio.Out, "working scans from the %s queue with %d workers\n", db.Dialect(), jcfg.Workers)
	<-ctx.Done()
	log.Info("stopping: draining scans")
	stopCtx, cancel := context.WithTimeout(context.Background(), jcfg.StopTimeout+15*time.Second)
	defer cancel()
	return srv.Stop(stopCtx)
}
