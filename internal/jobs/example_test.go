package jobs_test

import (
	"fmt"

	"github.com/vigil-sec/vigil/internal/jobs"
)

func ExampleParseSchedule() {
	if _, err := jobs.ParseSchedule("0 3 * * *"); err == nil {
		fmt.Println("ok")
	}
	_, err := jobs.ParseSchedule("0 25 * * *")
	fmt.Println(err)
	// Output:
	// ok
	// invalid schedule "0 25 * * *": end of range (25) above maximum (23): 25 (want cron syntax: five fields minute hour day-of-month month day-of-week, like "0 3 * * *", or @hourly, @daily, @weekly, @every 6h)
}
