package reports_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/reports"
)

func TestParseSchedule(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"0 6 * * 1", "@daily", "@weekly", "@monthly", "30 2 1 * *", "CRON_TZ=Europe/Paris 0 6 * * 1-5"} {
		if _, err := reports.ParseSchedule(ok); err != nil {
			t.Errorf("ParseSchedule(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "nope", "61 * * * *", "0 6 * * 8", "* * * * * *", "@every 1h", "@every 24h", "0 0 30 2 *",
		"0 6 * * 1\n0 7 * * 1", "CRON_TZ=Nowhere/Else 0 6 * * 1", strings.Repeat("1", 300)} {
		_, err := reports.ParseSchedule(bad)
		var se *reports.ScheduleError
		if !errors.As(err, &se) || !errors.Is(err, reports.ErrInvalid) {
			t.Errorf("ParseSchedule(%q) = %v, want a *ScheduleError", bad, err)
			continue
		}
		if want := bad; len(want) <= 200 && !strings.Contains(err.Error(), strings.ReplaceAll(want, "\n", `\n`)) {
			t.Errorf("ParseSchedule(%q): %q does not name the spec", bad, err)
		}
	}
}

func TestTick(t *testing.T) {
	t.Parallel()
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	// CRON_TZ=UTC: a spec without it is in the machine's time zone.
	for _, tt := range []struct{ spec, now, want string }{
		{"CRON_TZ=UTC 0 6 * * 1", "2026-12-02T10:00:00Z", "2026-11-30T06:00:00Z"},   // Wednesday: the Monday before
		{"CRON_TZ=UTC 0 6 * * 1", "2026-11-30T06:00:00Z", "2026-11-30T06:00:00Z"},   // at the tick
		{"CRON_TZ=UTC 0 6 * * 1", "2026-11-30T05:59:59.9Z", "2026-11-23T06:00:00Z"}, // just before: the week before
		{"CRON_TZ=UTC * * * * *", "2026-12-02T10:00:30Z", "2026-12-02T10:00:00Z"},   // every minute
		{"CRON_TZ=UTC 0 0 1 1 *", "2026-12-02T10:00:00Z", "2026-01-01T00:00:00Z"},   // yearly
		{"CRON_TZ=UTC 0 0 29 2 *", "2026-12-02T10:00:00Z", "2024-02-29T00:00:00Z"},  // leap days only
		{"CRON_TZ=America/New_York 0 6 * * *", "2026-12-02T10:00:00Z", "2026-12-01T11:00:00Z"},
	} {
		sched, err := reports.ParseSchedule(tt.spec)
		if err != nil {
			t.Fatal(err)
		}
		got, err := reports.Tick(sched, at(tt.now))
		if err != nil || !got.Equal(at(tt.want)) {
			t.Errorf("Tick(%q, %s) = %s, %v; want %s", tt.spec, tt.now, got, err, tt.want)
		}
	}
	if v := reports.ScheduledVersion(at("2026-12-03T06:00:00Z")); v != "scheduled-2026-12-03T0600Z" {
		t.Errorf("ScheduledVersion = %q", v)
	}
}

func TestScheduleChangeCheck(t *testing.T) {
	t.Parallel()
	spec := func(s string) *string { return &s }
	days := func(n int) *int { return &n }
	repos := func(r ...string) *[]string { return &r }
	for _, ok := range []reports.ScheduleChange{
		{Spec: spec("")},
		{Spec: spec("0 6 * * 1"), ImageWindowDays: days(1)},
		{ImageWindowDays: days(365)},
		{ImageRepositories: repos()},
		{ImageRepositories: repos("registry.example.com/team/app", "localhost:5000/app", "alpine")},
	} {
		if err := ok.Check(); err != nil {
			t.Errorf("%+v: %v", ok, err)
		}
	}
	many := make([]string, 21)
	for i := range many {
		many[i] = "registry.example.com/app" + strings.Repeat("x", i)
	}
	for _, bad := range []reports.ScheduleChange{
		{Spec: spec("@every 1h")},
		{ImageWindowDays: days(0)},
		{ImageWindowDays: days(366)},
		{ImageRepositories: repos("registry.example.com/app:1.0")},
		{ImageRepositories: repos("registry.example.com/app@sha256:" + strings.Repeat("a", 64))},
		{ImageRepositories: repos("Registry.example.com/App")},
		{ImageRepositories: repos("registry.example.com/app\n")},
		{ImageRepositories: &many},
	} {
		if err := bad.Check(); !errors.Is(err, reports.ErrInvalid) {
			t.Errorf("%+v: %v, want ErrInvalid", bad, err)
		}
	}
}
