package web

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/errandhq/errand/internal/store"
	"github.com/prometheus/client_golang/prometheus"
)

func handleHealth() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

// readyBudget is how long /readyz waits for each dependency: each is asked
// with a deadline of its own, all at once, so the answer comes within it
// whatever hangs, and names only what did not answer.
const readyBudget = 2 * time.Second

// handleReady answers 200 when Redis and the database both answer, else 503
// naming what is down. Requests are still taken while Redis is down (jobs wait
// in the outbox), but a load balancer should know. /readyz is public, so the
// answer names only what is down; the error itself, with its addresses and
// paths, goes to the log.
func (s *Server) handleReady() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		checks := map[string]func(context.Context) error{
			"redis":    func(ctx context.Context) error { return s.Redis.Ping(ctx).Err() },
			"database": s.Store.Ping,
		}
		type asked struct {
			ctx context.Context
			err chan error
		}
		all := make(map[string]asked, len(checks))
		for name, check := range checks {
			ctx, cancel := context.WithTimeout(r.Context(), readyBudget)
			defer cancel()
			a := asked{ctx, make(chan error, 1)}
			all[name] = a
			go func() { a.err <- check(ctx) }()
		}
		status, out := http.StatusOK, map[string]string{}
		for name, a := range all {
			out[name] = "ok"
			if err := answer(a.ctx, a.err); err != nil {
				status, out[name] = http.StatusServiceUnavailable, "unreachable"
				s.Log.Warn("readyz: "+name+" does not answer", "error", err.Error())
			}
		}
		writeJSON(w, status, out)
	})
}

// answer is a check's outcome, or an error once ctx's deadline has passed
// without one: a client that does not give up at its context's deadline
// (go-redis waits for its own read timeout on a connection that hangs) does
// not hold the answer. An outcome already there is taken, however late.
func answer(ctx context.Context, errc <-chan error) error {
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		select {
		case err := <-errc:
			return err
		default:
			return fmt.Errorf("no answer within %s: %w", readyBudget, ctx.Err())
		}
	}
}

// outboxCollector reports the jobs waiting in the database for Redis.
type outboxCollector struct {
	st      store.Store
	backlog *prometheus.Desc
	lag     *prometheus.Desc
}

func newOutboxCollector(st store.Store) *outboxCollector {
	return &outboxCollector{
		st:      st,
		backlog: prometheus.NewDesc("errand_outbox_backlog", "Jobs saved in the database and not yet in Redis.", nil, nil),
		lag:     prometheus.NewDesc("errand_outbox_lag_seconds", "Age of the oldest job not yet in Redis.", nil, nil),
	}
}

func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.backlog; ch <- c.lag }

func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, oldest, err := c.st.OutboxBacklog(ctx)
	if err != nil {
		return
	}
	lag := 0.0
	if !oldest.IsZero() {
		lag = time.Since(oldest).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(c.backlog, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, lag)
}
