// Package jobs is Vigil's durable job queue: River on the store's own
// database (riverpgxv5 on PostgreSQL, riversqlite on SQLite), so a job
// survives restarts and any number of `vigil worker` processes share it.
//
// Start-up, after store.Open:
//
//	db.Migrate(ctx)                    // the store's tables
//	jobs.Migrate(ctx, db, logger)      // River's tables
//	q, _ := jobs.New(db, &jobs.Config{Scans: runner, Logger: logger})
//	q.Start(ctx)
//	q.ResumeQueued(ctx)                // scans recorded just before a crash
//	defer q.Stop(shutdownCtx)          // drains within Config.StopTimeout
//
// A trigger records the scan, then inserts its job; both steps are
// idempotent, so a trigger delivered twice runs the scan once:
//
//	scan, _, err := db.EnqueueScan(ctx, store.NewScan{…})
//	if scan.Status == store.Queued {
//		q.InsertScan(ctx, scan.ID)
//	}
//
// Failed attempts are retried with backoff (Config.Backoff) up to
// Config.MaxAttempts; a runner returns Permanent(err) to give up at once,
// and learns which attempt it runs from Attempt(ctx). A job whose process
// died is run again after Config.RescueAfter.
//
// Periodic jobs (AddPeriodic) take any Schedule; ParseSchedule reads
// robfig/cron/v3 specs and names the spec in its error.
package jobs
