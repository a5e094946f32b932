package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/vigil-sec/vigil/internal/httpx"
	"github.com/vigil-sec/vigil/internal/jobs"
	"github.com/vigil-sec/vigil/licensing"
	"github.com/vigil-sec/vigil/reports"
)

// Report schedules (package reports, schedules.go): a product's releases
// cut on a cron schedule. They are set with the product (PATCH
// /api/v1/products/{id}: report_schedule, report_image_window_days,
// report_image_repositories) and shown with it (GET); the schedules are
// kept by reports in a table of their own, and run as the queue's
// periodic jobs ("report:<product>", beside the rescans').

// newSchedules makes the report schedules' service on the store, the
// releases and the job queue.
func (s *Server) newSchedules() (*reports.Scheduler, error) {
	sch, err := reports.NewScheduler(reports.SchedulerConfig{Store: s.db, Releases: s.reports, Queue: queue{s.queue}, Logger: s.log})
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	return sch, nil
}

// Schedules returns the report schedules' service.
func (s *Server) Schedules() *reports.Scheduler { return s.schedules }

// runPeriodic runs a periodic job: a report schedule's, or the
// pipeline's (rescans).
func (s *Server) runPeriodic(ctx context.Context, name string) error {
	if reports.IsScheduleJob(name) {
		return s.schedules.RunPeriodic(ctx, name, jobs.Enqueued(ctx))
	}
	return s.ci.RunPeriodic(ctx, name)
}

// ProductJSON is a product as the API shows it (GET of one product, and
// PATCH): licensing's, with its report schedule when it has one.
type ProductJSON struct {
	licensing.Product
	ReportSchedule          string   `json:"report_schedule,omitempty"`
	ReportImageWindowDays   int      `json:"report_image_window_days,omitempty"`
	ReportImageRepositories []string `json:"report_image_repositories,omitempty"`
}

// ScheduleReader reads a product's report schedule: the store.
type ScheduleReader interface {
	ReportSchedule(ctx context.Context, productID string) (reports.ReportSchedule, error)
}

// WithSchedule is the product with its report schedule, read from db, as
// the API shows it; the CLI shows the same on the store.
func WithSchedule(ctx context.Context, db ScheduleReader, p licensing.Product) (ProductJSON, error) {
	out := ProductJSON{Product: p}
	rs, err := db.ReportSchedule(ctx, p.ID)
	switch {
	case errors.Is(err, reports.ErrNotFound):
	case err != nil:
		return ProductJSON{}, err
	default:
		out.ReportSchedule, out.ReportImageWindowDays, out.ReportImageRepositories = rs.Spec, rs.ImageWindowDays, rs.ImageRepositories
	}
	return out, nil
}

// withSchedule is the product with its report schedule.
func (s *Server) withSchedule(ctx context.Context, p licensing.Product) (ProductJSON, error) {
	return WithSchedule(ctx, s.db, p)
}

// getProductWithSchedule serves GET /api/v1/products/{id}.
func (s *Server) getProductWithSchedule(w http.ResponseWriter, r *http.Request) {
	p, err := s.lic.GetProduct(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeLicensingError(w, r, err)
		return
	}
	out, err := s.withSchedule(r.Context(), p)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

// updateProductRequest is the body of PATCH /api/v1/products/{id}: absent
// members stay as they are; "report_schedule": "" removes the schedule.
type updateProductRequest struct {
	Name                    *string   `json:"name"`
	ReportSchedule          *string   `json:"report_schedule"`
	ReportImageWindowDays   *int      `json:"report_image_window_days"`
	ReportImageRepositories *[]string `json:"report_image_repositories"`
}

// updateProduct serves PATCH /api/v1/products/{id}: the name (licensing)
// and the report schedule (reports), each checked before either changes.
func (s *Server) updateProduct(w http.ResponseWriter, r *http.Request) {
	var req updateProductRequest
	if err := httpx.DecodeJSON(w, r, &req, 0); err != nil {
		httpx.WriteErr(w, err)
		return
	}
	ctx, id := r.Context(), r.PathValue("id")
	c := reports.ScheduleChange{Spec: req.ReportSchedule, ImageWindowDays: req.ReportImageWindowDays, ImageRepositories: req.ReportImageRepositories}
	var name string
	switch {
	case req.Name == nil && c.Empty():
		httpx.WriteErr(w, invalidField("nothing to change: give name, report_schedule, report_image_window_days or report_image_repositories"))
		return
	case req.Name != nil:
		var err error
		if name, err = CheckLicensingName(*req.Name); err != nil {
			httpx.WriteErr(w, invalidField("%v", err))
			return
		}
	}
	if err := c.Check(); err != nil {
		s.writeScheduleError(w, r, err)
		return
	}
	p, err := s.lic.GetProduct(ctx, id)
	if req.Name != nil && err == nil {
		p, err = s.lic.RenameProduct(ctx, id, name)
	}
	if err != nil {
		s.writeLicensingError(w, r, err)
		return
	}
	if !c.Empty() {
		if _, err := s.schedules.SetSchedule(ctx, id, c); err != nil {
			s.writeScheduleError(w, r, err)
			return
		}
	}
	out, err := s.withSchedule(ctx, p)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

// writeScheduleError answers a report schedule's refusal: the reports
// sentinels' messages name the field and the value.
func (s *Server) writeScheduleError(w http.ResponseWriter, r *http.Request, err error) {
	msg := strings.TrimPrefix(httpx.SafeMessage(err, reports.ErrInvalid, reports.ErrNotFound), reports.ErrInvalid.Error()+": ")
	switch {
	case errors.Is(err, reports.ErrInvalid):
		httpx.WriteError(w, http.StatusBadRequest, httpx.CodeInvalidField, msg)
	case errors.Is(err, reports.ErrNotFound):
		httpx.WriteError(w, http.StatusNotFound, "NOT_FOUND", msg)
	default:
		s.log.ErrorContext(r.Context(), "request failed", slog.String("path", r.URL.Path), slog.Any("error", err))
		httpx.WriteErr(w, err)
	}
}
