package metrics

import (
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Workers reports how many workers are alive for each queue, from the
// heartbeat every worker's asynq server writes every few seconds: a worker
// that dies stops being counted once its heartbeat expires, which is what
// the "worker gone" alert watches.
type Workers struct {
	ins  *asynq.Inspector
	desc *prometheus.Desc
}

// NewWorkers returns a collector of the workers alive, read from rdb.
func NewWorkers(rdb redis.UniversalClient) *Workers {
	return &Workers{
		ins:  asynq.NewInspectorFromRedisClient(rdb),
		desc: prometheus.NewDesc("errand_workers", "errand worker processes alive (sending heartbeats) that work a queue.", []string{"queue"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Workers) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *Workers) Collect(ch chan<- prometheus.Metric) {
	servers, err := c.ins.Servers()
	if err != nil {
		return // errand_metrics_redis_up says Redis did not answer
	}
	alive := map[string]int{}
	// Every known queue is reported, 0 when no worker works it: a queue
	// whose last worker died must not simply vanish from the scrape.
	if queues, err := c.ins.Queues(); err == nil {
		for _, q := range queues {
			alive[q] = 0
		}
	}
	for _, srv := range servers {
		for q := range srv.Queues {
			alive[q]++
		}
	}
	for q, n := range alive {
		if m, err := prometheus.NewConstMetric(c.desc, prometheus.GaugeValue, float64(n), labelSafe(q)); err == nil {
			ch <- m
		}
	}
}
