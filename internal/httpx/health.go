package httpx

import (
	"context"
	"net/http"
	"time"
)

// ReadyTimeout bounds one readiness check.
const ReadyTimeout = 2 * time.Second

// Health answers /healthz: 200 {"status":"ok"} whenever the process serves
// HTTP at all. It checks no dependency, so that a database outage does not
// get the process restarted.
func Health(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// Ready answers /readyz with check: 200 {"status":"ok"} when it returns nil,
// and 503 {"code":"NOT_READY","message":<its error>} otherwise. check runs
// with a ReadyTimeout deadline; its error text is shown, so it must name
// what is not ready without quoting SQL or secrets.
func Ready(check func(ctx context.Context) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), ReadyTimeout)
		defer cancel()
		w.Header().Set("Cache-Control", "no-store")
		if err := check(ctx); err != nil {
			WriteError(w, http.StatusServiceUnavailable, CodeNotReady, err.Error())
			return
		}
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}
