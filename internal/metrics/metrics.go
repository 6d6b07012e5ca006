// Package metrics counts what workers do and shows it to Prometheus: every
// worker adds its counts to one Redis hash, so one /metrics endpoint (on
// `errand serve`) reports the whole fleet, with the queues' sizes beside them.
package metrics

import (
	"context"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/rdb"
	"github.com/errandhq/errand/internal/rdb/sharedlimit"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// metricsKey is the Redis hash where every worker adds its counts, so one
// /metrics endpoint (on `errand serve`) reports the whole fleet.
const metricsKey = rdb.MetricsKey

const sep = "|"

// Outcome is how an attempt ended, as counted.
type Outcome int

// The outcomes, in the order of their counters.
const (
	Done   Outcome = iota // the job completed
	Retry                 // it failed and will run again
	Failed                // it failed for good
)

// durationBuckets are the handler-duration histogram's upper bounds, in seconds.
var durationBuckets = [...]float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// Recorder counts what a worker does and adds the counts to Redis every
// second, in one round trip, instead of one write per job. Observe and
// Escalated on a nil Recorder count nothing.
type Recorder struct {
	rdb redis.UniversalClient
	log *slog.Logger

	mu      sync.Mutex
	pending map[string]float64
	obs     map[obsKey]*obsCounts
}

// NewRecorder returns a counter set that flushes to rdb.
func NewRecorder(rdb redis.UniversalClient, log *slog.Logger) *Recorder {
	return &Recorder{rdb: rdb, log: log, pending: map[string]float64{}, obs: map[obsKey]*obsCounts{}}
}

func (m *Recorder) add(field string, v float64) {
	m.pending[field] += v
}

// obsKey and obsCounts gather the counts of one job type on one queue
// between flushes, without building a string per job.
type obsKey struct{ typ, queue string }

type obsCounts struct {
	outcomes [3]float64                        // by outcome
	buckets  [len(durationBuckets) + 1]float64 // the last: +Inf
	sum      float64
	count    float64
}

// Observe counts one attempt of a job of type typ on queue, which ran for
// took (zero when it never ran) and ended with o.
func (m *Recorder) Observe(typ, queue string, took time.Duration, o Outcome) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k := obsKey{typ, queue}
	c := m.obs[k]
	if c == nil {
		c = &obsCounts{}
		m.obs[k] = c
	}
	c.outcomes[o]++
	if took <= 0 && o == Failed {
		return // failed before running: no duration to record
	}
	s := took.Seconds()
	i := len(durationBuckets)
	for j, b := range durationBuckets {
		if s <= b {
			i = j
			break
		}
	}
	c.buckets[i]++
	c.sum += s
	c.count++
}

// fold moves the gathered counts into pending, as Redis hash fields. m.mu is
// held.
func (m *Recorder) fold() {
	names := [3]string{"processed", "retried", "failed"}
	for k, c := range m.obs {
		k := obsKey{labelSafe(k.typ), labelSafe(k.queue)}
		for o, n := range c.outcomes {
			if n > 0 {
				m.add(names[o]+sep+k.queue+sep+k.typ, n)
			}
		}
		for i, n := range c.buckets {
			if n == 0 {
				continue
			}
			le := "+Inf"
			if i < len(durationBuckets) {
				le = strconv.FormatFloat(durationBuckets[i], 'g', -1, 64)
			}
			m.add("duration_bucket"+sep+k.typ+sep+le, n)
		}
		if c.count > 0 {
			m.add("duration_sum"+sep+k.typ, c.sum)
			m.add("duration_count"+sep+k.typ, c.count)
		}
	}
	clear(m.obs)
}

// Escalated counts a final failure queued for the developers' escalation
// email.
func (m *Recorder) Escalated(typ, queue string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.add("escalated"+sep+labelSafe(queue)+sep+labelSafe(typ), 1)
	m.mu.Unlock()
}

// labelSafe makes s fit to be a Prometheus label value, which must be valid
// UTF-8: a job's type comes from whatever wrote the job into Redis.
func labelSafe(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// Flush adds the counts gathered since the last flush to Redis. Counts that
// cannot be written are kept for the next flush.
func (m *Recorder) Flush(ctx context.Context) error {
	m.mu.Lock()
	m.fold()
	batch := m.pending
	m.pending = map[string]float64{}
	m.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	_, err := m.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for f, v := range batch {
			if v == float64(int64(v)) {
				p.HIncrBy(ctx, metricsKey, f, int64(v))
			} else {
				p.HIncrByFloat(ctx, metricsKey, f, v)
			}
		}
		return nil
	})
	if err != nil {
		m.mu.Lock()
		for f, v := range batch {
			m.pending[f] += v
		}
		m.mu.Unlock()
	}
	return err
}

// Run flushes every interval until ctx ends, then once more.
func (m *Recorder) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if err := m.Flush(ctx); err != nil {
				m.log.Debug("metrics flush failed; kept for the next one", "error", err)
			}
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = m.Flush(fctx)
			cancel()
			return
		}
	}
}

// Collector exposes the fleet's counts and the queues' sizes to Prometheus.
type Collector struct {
	rdb redis.UniversalClient
	ins *asynq.Inspector

	counters  map[string]*prometheus.Desc
	duration  *prometheus.Desc
	size      *prometheus.Desc
	latency   *prometheus.Desc
	held      *prometheus.Desc
	throttled *prometheus.Desc
	scrapeErr *prometheus.Desc
}

// NewCollector returns a collector reading from rdb.
func NewCollector(rdb redis.UniversalClient) *Collector {
	c := &Collector{
		rdb:      rdb,
		ins:      asynq.NewInspectorFromRedisClient(rdb),
		counters: map[string]*prometheus.Desc{},
	}
	for name, help := range map[string]string{
		"processed": "Jobs that completed.",
		"retried":   "Failed attempts that will be retried.",
		"failed":    "Jobs that failed for good (final failures).",
		"escalated": "Final failures queued for the developers' escalation email.",
	} {
		c.counters[name] = prometheus.NewDesc("errand_jobs_"+name+"_total", help, []string{"queue", "type"}, nil)
	}
	c.duration = prometheus.NewDesc("errand_job_duration_seconds", "Time a job's handler ran, per attempt.", []string{"type"}, nil)
	c.size = prometheus.NewDesc("errand_queue_size", "Jobs in a queue, by state.", []string{"queue", "state"}, nil)
	c.latency = prometheus.NewDesc("errand_queue_latency_seconds", "Age of the oldest pending job in a queue.", []string{"queue"}, nil)
	c.held = prometheus.NewDesc("errand_service_held_until_timestamp_seconds",
		"When the hold of a service that throttled us ends, as a Unix time; 0 when it is not held. Its jobs wait on every worker until then.",
		[]string{"service"}, nil)
	c.throttled = prometheus.NewDesc("errand_service_throttled_total",
		"Throttled answers of a service (429, THROTTLED, retry_after), each of which held it for every worker.", []string{"service"}, nil)
	c.scrapeErr = prometheus.NewDesc("errand_metrics_redis_up", "1 when Redis answered the metrics scrape.", nil, nil)
	return c
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.counters {
		ch <- d
	}
	ch <- c.duration
	ch <- c.size
	ch <- c.latency
	ch <- c.held
	ch <- c.throttled
	ch <- c.scrapeErr
}

type histo struct {
	count   uint64
	sum     float64
	buckets map[float64]uint64
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	// A series that cannot be made (a label that is not valid UTF-8, written
	// by an older errand or another program) is left out; a panic here would
	// end the whole process, and an error would fail the whole scrape.
	send := func(m prometheus.Metric, err error) {
		if err == nil {
			ch <- m
		}
	}
	all, err := c.rdb.HGetAll(ctx, metricsKey).Result()
	if err != nil {
		send(prometheus.NewConstMetric(c.scrapeErr, prometheus.GaugeValue, 0))
		return
	}
	send(prometheus.NewConstMetric(c.scrapeErr, prometheus.GaugeValue, 1))
	histos := map[string]*histo{}
	h := func(typ string) *histo {
		if histos[typ] == nil {
			histos[typ] = &histo{buckets: map[float64]uint64{}}
		}
		return histos[typ]
	}
	for field, raw := range all {
		v, err := strconv.ParseFloat(raw, 64)
		if err != nil || !utf8.ValidString(field) {
			continue
		}
		parts := strings.Split(field, sep)
		switch {
		case len(parts) == 3 && c.counters[parts[0]] != nil:
			send(prometheus.NewConstMetric(c.counters[parts[0]], prometheus.CounterValue, v, parts[1], parts[2]))
		case len(parts) == 3 && parts[0] == "duration_bucket":
			if parts[2] == "+Inf" {
				continue
			}
			le, err := strconv.ParseFloat(parts[2], 64)
			if err == nil {
				h(parts[1]).buckets[le] += uint64(v)
			}
		case len(parts) == 2 && parts[0] == "duration_sum":
			h(parts[1]).sum = v
		case len(parts) == 2 && field == sharedlimit.ThrottledField(parts[1]):
			send(prometheus.NewConstMetric(c.throttled, prometheus.CounterValue, v, parts[1]))
		case len(parts) == 2 && parts[0] == "duration_count":
			h(parts[1]).count = uint64(v)
		}
	}
	for typ, hs := range histos {
		cum := map[float64]uint64{}
		var run uint64
		bounds := append([]float64(nil), durationBuckets[:]...)
		sort.Float64s(bounds)
		for _, b := range bounds {
			run += hs.buckets[b]
			cum[b] = run
		}
		send(prometheus.NewConstHistogram(c.duration, hs.count, hs.sum, cum, typ))
	}
	if holds, err := sharedlimit.New(c.rdb).LimitHolds(ctx, config.Services); err == nil {
		now := time.Now()
		for _, svc := range config.Services {
			end := 0.0
			if h := holds[svc]; h.After(now) {
				end = float64(h.UnixMilli()) / 1000
			}
			send(prometheus.NewConstMetric(c.held, prometheus.GaugeValue, end, svc))
		}
	}
	queues, err := c.ins.Queues()
	if err != nil {
		return
	}
	for _, q := range queues {
		if !utf8.ValidString(q) {
			continue
		}
		info, err := c.ins.GetQueueInfo(q)
		if err != nil {
			continue
		}
		for state, n := range map[string]int{
			"pending": info.Pending, "scheduled": info.Scheduled, "retry": info.Retry,
			"active": info.Active, "failed": info.Archived, "aggregating": info.Aggregating,
			"completed": info.Completed,
		} {
			send(prometheus.NewConstMetric(c.size, prometheus.GaugeValue, float64(n), q, state))
		}
		send(prometheus.NewConstMetric(c.latency, prometheus.GaugeValue, info.Latency.Seconds(), q))
	}
}
