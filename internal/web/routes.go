package web

import (
	"net/http"
	"strings"

	"github.com/errandhq/errand/internal/metrics"
	"github.com/errandhq/errand/internal/rdb"
	"github.com/errandhq/errand/internal/redisconn"
	"github.com/errandhq/errand/internal/web/dashview"
	"github.com/hibiken/asynqmon"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// routes maps errand's whole HTTP surface. The returned func releases the
// dashboard's connections.
func (s *Server) routes() (http.Handler, func() error) {
	mux := http.NewServeMux()

	mux.Handle("POST /api/users", s.handleRegister())
	// Called by the shop's backend only: ids count up, so an open PATCH
	// would read and rewrite every user.
	mux.Handle("PATCH /api/users/{id}", s.requireToken(s.handleProfileChange()))
	mux.Handle("POST /webhooks/shopify/orders-paid", s.handleOrdersPaid())
	mux.Handle("POST /webhooks/fulfillment/tracking", s.handleTrackingCallback())
	mux.Handle("POST /api/jobs", s.requireToken(s.handleEnqueue()))
	mux.Handle("GET /api/jobs/{id}", s.requireToken(s.handleJobStatus()))
	mux.Handle("GET /api/timeline", s.requireToken(s.handleTimeline()))

	mux.Handle("GET /healthz", handleHealth())
	mux.Handle("GET /readyz", s.handleReady())

	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewCollector(s.Redis), newOutboxCollector(s.Store), metrics.NewWorkers(s.Redis),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	httpm := newHTTPMetrics(reg)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))

	path := "/" + strings.Trim(s.Config.Dashboard.Path, "/")
	dash := asynqmon.New(asynqmon.Options{
		RootPath:     path,
		RedisConnOpt: redisconn.ConnOpt(s.Config.Redis),
		ReadOnly:     s.Config.Dashboard.ReadOnly,
		// errand stores no result: asynqmon would call every one "non-printable bytes".
		ResultFormatter: asynqmon.ResultFormatterFunc(dashview.Result),
	})
	ins := rdb.NewInspector(s.Redis, nil)
	view, err := dashview.New(s.withServiceBanner(dash, path), dashview.Options{
		Path: path, Asynqmon: dash, Registry: s.Registry, FailedOnDays: ins.FailedOnDays})
	if err != nil {
		// The dashboard still works, with asynqmon's own labels.
		s.Log.Error(err.Error())
	}
	guarded := s.dashboardAuth(s.withTimeline(path, view))
	mux.Handle(path+"/", guarded)
	mux.Handle(path, http.RedirectHandler(path+"/", http.StatusMovedPermanently))

	return s.logRequests(httpm.instrument(mux)), dash.Close
}
