// Package httpx is the plumbing every Vigil HTTP endpoint shares: TLS
// certificates, a server with bounded timeouts and graceful shutdown, JSON
// bodies and errors in the shape DESIGN's API conventions set, middleware,
// rate limits, health checks and Prometheus metrics.
//
// A server is wired like this (outermost first):
//
//	cert, fp, created, err := httpx.LoadOrCreateCert(filepath.Join(dataDir, "tls"), nil)
//	// print fp when created, so that clients can pin it
//
//	metrics := httpx.NewMetrics()
//	mux := http.NewServeMux()
//	mux.HandleFunc("GET /healthz", httpx.Health)
//	mux.Handle("GET /readyz", httpx.Ready(db.Ping))
//	mux.Handle("GET /metrics", metrics.Handler())
//	mux.Handle("POST /oauth2/token", limiter.Middleware(func(r *http.Request) string { return httpx.ClientIP(r) })(token))
//
//	var h http.Handler = metrics.Middleware(mux) // directly around the mux: it reads r.Pattern
//	h = httpx.Recover(logger)(h)
//	h = httpx.LimitBodyByRoute(mux, httpx.DefaultBodyLimit, largerRoutes)(h)
//	h = httpx.AccessLog(logger)(h)
//	h = httpx.RequestID(h)
//	h = httpx.SecurityHeaders("/oauth2/")(h) // nosniff, framing, HSTS over TLS, no-store
//
//	srv := httpx.NewServer(httpx.ServerConfig{Handler: h, TLSConfig: httpx.TLSConfig(cert), Logger: logger})
//	err = httpx.Serve(ctx, srv, ln, true) // returns after ctx is cancelled and requests drained
//
// Handlers decode with DecodeJSON, which returns an *Error (400, 413, 415)
// safe to show, and answer with WriteJSON, WriteError or WriteErr. WriteErr
// shows only *Error messages; any other error becomes a bare 500 INTERNAL,
// so SQL and stack traces never reach a client.
package httpx
