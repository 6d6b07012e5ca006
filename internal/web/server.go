// Package web is errand's HTTP side: the JSON API, the signed webhooks, the
// dashboard, /metrics, /healthz and /readyz. routes.go maps all of it.
package web

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/outbox"
	"github.com/errandhq/errand/internal/store"
	"github.com/redis/go-redis/v9"
)

// Server holds what the handlers need.
type Server struct {
	Config   *config.Config
	Store    store.Store
	Registry *job.Registry
	// Events queues each event's jobs ([events]); New builds it from
	// Config when nil, so serve checks it first (job.NewEvents).
	Events *job.Events
	Relay  *outbox.Relay
	Redis  redis.UniversalClient
	Log    *slog.Logger

	// hash turns a password into its stored form (bcrypt); a field so tests
	// and benchmarks can see its cost apart from the rest.
	hash func(password string) (string, error)
	// hashGate bounds how many hashes run at once (see newHashGate).
	hashGate *hashGate
}

// New returns the HTTP handler of `errand serve`.
func New(s *Server) (http.Handler, func() error) {
	if s.hash == nil {
		s.hash = hashPassword
	}
	if s.hashGate == nil {
		s.hashGate = newHashGate()
	}
	if s.Events == nil {
		ev, err := job.NewEvents(s.Registry, s.Config.Events)
		if err != nil {
			panic("web: " + err.Error()) // serve reports this at start, before New
		}
		s.Events = ev
	}
	return s.routes()
}

// Serve runs h on addr until ctx ends, then drains in-flight requests.
func Serve(ctx context.Context, addr string, h http.Handler, log *slog.Logger, ready func(addr string)) error {
	srv := &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	ln, err := listen(addr)
	if err != nil {
		return err
	}
	if ready != nil {
		ready(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
