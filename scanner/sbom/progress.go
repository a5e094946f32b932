package sbom

import (
	"fmt"
	"sync"
	"time"

	"github.com/anchore/syft/syft"
	"github.com/anchore/syft/syft/event"
	"github.com/anchore/syft/syft/event/monitor"
	"github.com/anchore/syft/syft/event/parsers"
	"github.com/wagoodman/go-partybus"
	"github.com/wagoodman/go-progress"
)

// progressEvery is how often WatchProgress reports syft's counters.
const progressEvery = 200 * time.Millisecond

// WatchProgress reports syft's cataloging progress ("cataloging: 12/40
// tasks, 153 packages") to report until the returned stop is called, and
// once more then.
//
// syft publishes its progress on one process-wide event bus, so only a
// process that runs one SBOM at a time — the CLI — should watch it; the
// engine itself reports only its stages through Config.Progress.
func WatchProgress(report func(string)) (stop func()) {
	bus := partybus.NewBus()
	sub := bus.Subscribe(event.CatalogerTaskStarted)
	syft.SetBus(bus)

	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var top, pkgs progress.StagedProgressable
		tick := time.NewTicker(progressEvery)
		defer tick.Stop()
		for {
			select {
			case e := <-sub.Events():
				prog, task, err := parsers.ParseCatalogerTaskStarted(e)
				if err != nil {
					continue
				}
				switch task.ID {
				case monitor.TopLevelCatalogingTaskID:
					top = prog
				case monitor.PackageCatalogingTaskID:
					pkgs = prog
				}
			case <-tick.C:
				if msg := progressMessage(top, pkgs); msg != "" {
					report(msg)
				}
			case <-done:
				// One last report, so that even a scan shorter than a
				// tick says what it cataloged.
				if msg := progressMessage(top, pkgs); msg != "" {
					report(msg)
				}
				return
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
		_ = sub.Unsubscribe()
	}
}

// progressMessage describes syft's top-level cataloging task and its
// package count, or returns "" before cataloging starts.
func progressMessage(top, pkgs progress.StagedProgressable) string {
	if top == nil {
		return ""
	}
	msg := fmt.Sprintf("cataloging: %d/%d tasks", top.Current(), top.Size())
	if pkgs != nil && pkgs.Stage() != "" {
		msg += ", " + pkgs.Stage()
	}
	return msg
}
