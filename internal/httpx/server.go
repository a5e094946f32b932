package httpx

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Defaults of ServerConfig and Serve. WriteTimeout bounds a whole response,
// so handlers that stream or wait longer (long polls) must not be behind it.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultMaxHeaderBytes    = 64 << 10
	// ShutdownGrace is how long Serve lets in-flight requests finish after
	// its context is cancelled before it closes their connections.
	ShutdownGrace = 30 * time.Second
)

// ServerConfig configures NewServer. Zero durations and sizes mean the
// defaults above; a nil Logger discards the server's own error log.
type ServerConfig struct {
	Addr      string
	Handler   http.Handler
	TLSConfig *tls.Config // nil for plain HTTP (behind a TLS proxy)
	Logger    *slog.Logger

	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
}

// NewServer makes an http.Server with every timeout and the header size
// bounded, so a slow or hostile client cannot hold connections open.
func NewServer(cfg ServerConfig) *http.Server {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &http.Server{
		Addr:              cfg.Addr,
		Handler:           cfg.Handler,
		TLSConfig:         cfg.TLSConfig,
		ReadHeaderTimeout: orDefault(cfg.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		ReadTimeout:       orDefault(cfg.ReadTimeout, DefaultReadTimeout),
		WriteTimeout:      orDefault(cfg.WriteTimeout, DefaultWriteTimeout),
		IdleTimeout:       orDefault(cfg.IdleTimeout, DefaultIdleTimeout),
		MaxHeaderBytes:    orDefault(cfg.MaxHeaderBytes, DefaultMaxHeaderBytes),
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

func orDefault[T time.Duration | int](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Serve serves srv on ln until ctx is cancelled, then shuts down: it stops
// accepting, waits up to ShutdownGrace for in-flight requests and closes
// what is left. With useTLS, srv.TLSConfig must hold the certificate;
// without, requests with both Content-Length and Transfer-Encoding are
// refused (see RefuseAmbiguousFraming). It returns nil after a clean
// shutdown.
func Serve(ctx context.Context, srv *http.Server, ln net.Listener, useTLS bool) error {
	return serve(ctx, srv, ln, useTLS, ShutdownGrace)
}

func serve(ctx context.Context, srv *http.Server, ln net.Listener, useTLS bool, grace time.Duration) error {
	if useTLS && (srv.TLSConfig == nil || (len(srv.TLSConfig.Certificates) == 0 && srv.TLSConfig.GetCertificate == nil)) {
		ln.Close()
		return errors.New("serve TLS: the server has no certificate")
	}
	if !useTLS {
		ln = RefuseAmbiguousFraming(ln)
	}
	errc := make(chan error, 1)
	go func() {
		if useTLS {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()

	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}

	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	err := srv.Shutdown(shutdownCtx)
	if err != nil {
		srv.Close()
		err = fmt.Errorf("shutdown: requests still running after %s were cut off: %w", grace, err)
	}
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = fmt.Errorf("serve %s: %w", ln.Addr(), serr)
	}
	return err
}
