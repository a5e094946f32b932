package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vigil-sec/vigil/internal/server"
	"github.com/vigil-sec/vigil/reports"
)

// newProductsUpdateCmd makes `vigil products update`: a product's name and
// report schedule, through a running server's Management API (the server
// schedules the releases, so this command does not write the store).
func newProductsUpdateCmd(stdio Stdio) *cobra.Command {
	var (
		sf       serverFlags
		name     string
		schedule string
		window   int
		repos    []string
		asJSON   bool
	)
	cmd := &cobra.Command{
		Use:   `update ID [--name N] [--report-schedule "0 6 * * 1"|""] [--report-image-window DAYS] [--report-image-repo REPO]...`,
		Short: "Rename a product or set its report schedule, through a running server: only the flags given change",
		Long: `Change a product through a running server's Management API (PATCH
/api/v1/products/{id}); the server is --server or $VIGIL_SERVER, the client
credentials VIGIL_CLIENT_ID and VIGIL_CLIENT_SECRET (scope licensing:admin).

--report-schedule is a cron schedule (five fields, or @daily, @weekly,
@monthly; CRON_TZ=Area/City first for a time zone; not @every) on which the
server cuts a release of the product, named scheduled-YYYY-MM-DDTHHMMZ after
the tick: the default branches of its production projects at their newest
succeeded scans, and the image digests first scanned in the last
--report-image-window days (default 30) for those projects or in the
--report-image-repo repositories. --report-schedule "" removes it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fl := cmd.Flags()
			body := map[string]any{}
			if fl.Changed("name") {
				n, err := server.CheckLicensingName(name)
				if err != nil {
					return &usageError{fmt.Errorf("--%v", err)}
				}
				body["name"] = n
			}
			c := reports.ScheduleChange{}
			if fl.Changed("report-schedule") {
				body["report_schedule"], c.Spec = schedule, &schedule
			}
			if fl.Changed("report-image-window") {
				body["report_image_window_days"], c.ImageWindowDays = window, &window
			}
			if fl.Changed("report-image-repo") {
				list := []string{}
				for _, r := range repos {
					if r != "" {
						list = append(list, r)
					}
				}
				if len(list) > 0 && len(list) < len(repos) {
					return &usageError{errors.New("--report-image-repo '' removes every repository: do not give it with repositories")}
				}
				body["report_image_repositories"], c.ImageRepositories = list, &list
			}
			if len(body) == 0 {
				return &usageError{errors.New("nothing to change: give --name, --report-schedule, --report-image-window or --report-image-repo")}
			}
			if err := c.Check(); err != nil {
				msg := strings.TrimPrefix(err.Error(), reports.ErrInvalid.Error()+": ")
				for field, flag := range map[string]string{"report_schedule": "--report-schedule", "report_image_window_days": "--report-image-window", "report_image_repositories": "--report-image-repo"} {
					msg = strings.Replace(msg, field, flag, 1)
				}
				return &usageError{errors.New(msg)}
			}
			out, err := sf.call(cmd.Context(), server.ScopeLicensingAdmin, "PATCH", "/api/v1/products/"+url.PathEscape(args[0]), body)
			if err != nil {
				return err
			}
			if asJSON {
				return printRaw(stdio.Out, out)
			}
			var p struct {
				ID, Name       string
				ReportSchedule string   `json:"report_schedule"`
				Window         int      `json:"report_image_window_days"`
				Repos          []string `json:"report_image_repositories"`
			}
			if err := json.Unmarshal(out, &p); err != nil {
				return fmt.Errorf("the server's product is not JSON: %w", err)
			}
			fmt.Fprintf(stdio.Out, "product %s (%s)\n", p.ID, p.Name)
			if p.ReportSchedule == "" {
				fmt.Fprintln(stdio.Out, "  report schedule: none")
				return nil
			}
			fmt.Fprintf(stdio.Out, "  report schedule: %s\n  image window:    %d days\n", p.ReportSchedule, p.Window)
			if len(p.Repos) > 0 {
				fmt.Fprintf(stdio.Out, "  image repos:     %s\n", strings.Join(p.Repos, ", "))
			}
			return nil
		},
	}
	sf.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&name, "name", "", "the product's new name")
	fl.StringVar(&schedule, "report-schedule", "", `cron schedule of the product's releases, like "0 6 * * 1" (Mondays 06:00 UTC); "" removes it`)
	fl.IntVar(&window, "report-image-window", reports.DefaultImageWindowDays, "a scheduled release takes the image digests first scanned in this many days before it (1 to 365)")
	fl.StringArrayVar(&repos, "report-image-repo", nil, "an image repository (registry.example.com/team/app) whose recent digests scheduled releases take; repeatable, the list replaces the product's; '' removes them all")
	fl.BoolVar(&asJSON, "json", false, "print the product as the API answers it")
	return cmd
}
