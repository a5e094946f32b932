package server

import "github.com/vigil-sec/vigil/ci"

// TakeRescanSchedule reports whether this process has a periodic rescan
// of the project, and unschedules it: tests read what createProject,
// updateProject and deleteProject left scheduled.
func TakeRescanSchedule(s *Server, projectID string) bool {
	return s.queue.RemovePeriodic(ci.RescanJob(projectID))
}
