package web

import (
	"context"
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

// handleReady answers 200 when Redis and the database both answer, else 503
// naming what is down. Requests are still taken while Redis is down (jobs wait
// in the outbox), but a load balancer should know. /readyz is public, so the
// answer names only what is down; the error itself, with its addresses and
// paths, goes to the log.
func (s *Server) handleReady() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		status := http.StatusOK
		out := map[string]string{"redis": "ok", "database": "ok"}
		if err := s.Redis.Ping(ctx).Err(); err != nil {
			status, out["redis"] = http.StatusServiceUnavailable, "unreachable"
			s.Log.Warn("readyz: Redis does not answer", "error", err.Error())
		}
		if err := s.Store.Ping(ctx); err != nil {
			status, out["database"] = http.StatusServiceUnavailable, "unreachable"
			s.Log.Warn("readyz: the database does not answer", "error", err.Error())
		}
		writeJSON(w, status, out)
	})
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
