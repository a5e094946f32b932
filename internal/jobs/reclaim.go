package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/rivertype"
)

// Reclaimed is a job Reclaim made available again.
type Reclaimed struct {
	JobID int64
	Kind  string
	// ScanID is the scan of a scan job, "" for other kinds.
	ScanID string
}

// Reclaim makes every job that is running, and was last attempted before
// the horizon, available again at once, as River's rescuer would after
// Config.RescueAfter. Call it before Start, with time.Now() as horizon,
// when no other process may be working this queue: then a running job can
// only be one a dead process left (SIGKILL, power loss), and waiting
// RescueAfter (over an hour by default) would only delay it.
//
// It is not safe when other processes work the same database (`vigil
// worker` hosts on PostgreSQL): a job they are running would run twice at
// once. There, River's rescuer does the job, after RescueAfter.
//
// A reclaimed job keeps its attempt count, and an error saying why is
// added to its errors. It returns the jobs it reclaimed.
func (c *Client) Reclaim(ctx context.Context, horizon time.Time) ([]Reclaimed, error) {
	var out []Reclaimed
	var after int64
	for {
		stuck, err := c.exec.JobGetStuck(ctx, &riverdriver.JobGetStuckParams{
			AfterID: after, Max: 100, StuckHorizon: horizon,
		})
		if err != nil {
			return out, fmt.Errorf("jobs: reclaim: list running jobs: %w", err)
		}
		if len(stuck) == 0 {
			return out, nil
		}
		now := time.Now().UTC()
		p := riverdriver.JobRescueManyParams{StuckHorizon: horizon}
		for _, j := range stuck {
			after = j.ID
			e, err := json.Marshal(rivertype.AttemptError{
				At:      now,
				Attempt: max(j.Attempt, 1),
				Error:   "reclaimed at start: the process running it had died",
			})
			if err != nil {
				return out, fmt.Errorf("jobs: reclaim: %w", err)
			}
			p.ID = append(p.ID, j.ID)
			p.Error = append(p.Error, e)
			p.FinalizedAt = append(p.FinalizedAt, nil)
			p.ScheduledAt = append(p.ScheduledAt, now)
			p.State = append(p.State, string(rivertype.JobStateAvailable))
			r := Reclaimed{JobID: j.ID, Kind: j.Kind}
			if j.Kind == (ScanArgs{}).Kind() {
				var a ScanArgs
				if json.Unmarshal(j.EncodedArgs, &a) == nil {
					r.ScanID = a.ScanID
				}
			}
			out = append(out, r)
		}
		if _, err := c.exec.JobRescueMany(ctx, &p); err != nil {
			return out[:len(out)-len(stuck)], fmt.Errorf("jobs: reclaim: %w", err)
		}
		if len(stuck) < 100 {
			return out, nil
		}
	}
}
