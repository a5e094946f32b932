package httpx

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// unmatchedRoute labels requests that no route matched (404, 405), so that
// scanners probing random paths do not add label values.
const unmatchedRoute = "unmatched"

// Metrics is a Prometheus registry of its own (not the global one) holding
// the process and Go runtime collectors and the HTTP request histogram.
// Other packages register their collectors on Registry.
type Metrics struct {
	Registry *prometheus.Registry
	requests *prometheus.HistogramVec
}

// NewMetrics makes a Metrics with its collectors registered.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "vigil",
			Subsystem: "http",
			Name:      "request_duration_seconds",
			Help:      "Time to serve HTTP requests, by method, route pattern and status class.",
			Buckets:   prometheus.DefBuckets,
		}, []string{"method", "route", "status"}),
	}
	reg.MustRegister(
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector(),
		m.requests,
	)
	return m
}

// Handler serves the registry for /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// Middleware observes each request's duration, labelled by method, the
// ServeMux route pattern that matched (r.Pattern, without its method) and
// the status class ("2xx"); never by raw path. It must wrap the
// *http.ServeMux directly: the mux sets r.Pattern on the request it is
// given, which a middleware in between that calls r.WithContext would hide.
func (m *Metrics) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := wrap(w)
		next.ServeHTTP(rec, r)
		m.requests.WithLabelValues(methodLabel(r.Method), routeLabel(r.Pattern), statusClass(rec.statusCode())).
			Observe(time.Since(start).Seconds())
	})
}

// routeLabel drops the method from a pattern like "GET /api/v1/scans/{id}".
func routeLabel(pattern string) string {
	if pattern == "" {
		return unmatchedRoute
	}
	if _, rest, ok := strings.Cut(pattern, " "); ok {
		return strings.TrimLeft(rest, " \t")
	}
	return pattern
}

// methodLabel keeps the label's values bounded: unknown methods are OTHER.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return "OTHER"
}

func statusClass(status int) string {
	if status < 100 || status > 599 {
		return "other"
	}
	return strconv.Itoa(status/100) + "xx"
}
