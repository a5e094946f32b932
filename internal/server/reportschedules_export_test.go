package server

import "github.com/vigil-sec/vigil/reports"

// TakeReportSchedule reports whether this process has the periodic job
// of the product's report schedule, and unschedules it: tests read what
// PATCH /api/v1/products/{id} and Start left scheduled.
func TakeReportSchedule(s *Server, productID string) bool {
	return s.queue.RemovePeriodic(reports.ScheduleJob(productID))
}
