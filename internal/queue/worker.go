package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/errandhq/errand/internal/config"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// QueueSet is which queues a worker takes jobs from, and how.
type QueueSet struct {
	Weights map[string]int
	// Strict: always take from the highest-weighted non-empty queue first
	// (think-queue's --queue a,b); otherwise share by weight.
	Strict bool
	Order  []string // highest priority first
}

// ParseQueues reads --queues. "a,b,c" works the queues in that order of
// priority; "a:3,b:1" shares by weight; "" takes every configured queue with
// its weight. strict forces strict priority for weights too.
func ParseQueues(spec string, configured map[string]int, strict bool) (QueueSet, error) {
	qs := QueueSet{Weights: map[string]int{}, Strict: strict}
	spec = strings.TrimSpace(spec)
	if spec == "" {
		for name, w := range configured {
			qs.Weights[name] = w
		}
	} else {
		parts := strings.Split(spec, ",")
		weighted := strings.Contains(spec, ":")
		for i, p := range parts {
			p = strings.TrimSpace(p)
			name, ws, hasW := strings.Cut(p, ":")
			if name == "" {
				return qs, fmt.Errorf("--queues %q: empty queue name", spec)
			}
			if _, ok := configured[name]; !ok {
				return qs, fmt.Errorf("--queues: queue %q is not configured (configured: %s)", name, strings.Join(sortedKeys(configured), ", "))
			}
			if _, dup := qs.Weights[name]; dup {
				return qs, fmt.Errorf("--queues: queue %q named twice", name)
			}
			w := 1
			switch {
			case hasW:
				n, err := strconv.Atoi(ws)
				if err != nil || n < 1 {
					return qs, fmt.Errorf("--queues: weight of %q must be a whole number ≥ 1 (got %q)", name, ws)
				}
				w = n
			case !weighted:
				// Listed order is priority order.
				w = len(parts) - i
			}
			qs.Weights[name] = w
			qs.Order = append(qs.Order, name)
		}
		if !weighted {
			qs.Strict = true
		}
	}
	if len(qs.Order) == 0 {
		qs.Order = sortedKeys(qs.Weights)
	}
	sort.SliceStable(qs.Order, func(i, j int) bool { return qs.Weights[qs.Order[i]] > qs.Weights[qs.Order[j]] })
	return qs, nil
}

func sortedKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (qs QueueSet) String() string {
	parts := make([]string, len(qs.Order))
	for i, q := range qs.Order {
		parts[i] = fmt.Sprintf("%s:%d", q, qs.Weights[q])
	}
	mode := "weighted"
	if qs.Strict {
		mode = "strict priority"
	}
	return strings.Join(parts, ",") + " (" + mode + ")"
}

// Worker works jobs: think-queue's queue:work.
//
// One asynq server takes jobs off Redis one at a time, whatever its
// concurrency (about 7.8k jobs/s here), so a worker runs several servers —
// "fetchers" — sharing its concurrency between them; they take jobs in
// parallel.
type Worker struct {
	servers []*asynq.Server
	due     *dueForwarder
	policy  *Policy
	metrics *Metrics
	queues  QueueSet
	timeout time.Duration
	log     *slog.Logger
}

// Fetchers returns how many dequeue loops a worker of the given concurrency
// runs when worker.fetchers is 0: one per 10 jobs at once, 1 to 4.
func Fetchers(concurrency, configured int) int {
	if configured > 0 {
		return min(configured, concurrency)
	}
	return max(1, min(4, concurrency/10))
}

// NewWorker returns a worker for cfg.Worker over rdb, running the jobs of reg.
func NewWorker(cfg *config.Config, reg *Registry, rdb redis.UniversalClient, log *slog.Logger) (*Worker, error) {
	qs, err := ParseQueues(cfg.Worker.Queues, cfg.Queues, cfg.Worker.Strict)
	if err != nil {
		return nil, err
	}
	metrics := NewMetrics(rdb, log)
	esc := NewEscalator(reg, asynq.NewClientFromRedisClient(rdb), cfg.Escalation.Redact)
	policy := NewPolicy(reg, esc, metrics, log)
	policy.rdb = rdb
	policy.handOverLead = cfg.Worker.PollInterval + 50*time.Millisecond
	n := Fetchers(cfg.Worker.Concurrency, cfg.Worker.Fetchers)
	w := &Worker{policy: policy, metrics: metrics, queues: qs, timeout: cfg.Worker.ShutdownTimeout, log: log,
		due: &dueForwarder{rdb: rdb, lead: policy.handOverLead, log: log}}
	for i := range n {
		share := cfg.Worker.Concurrency / n
		if i < cfg.Worker.Concurrency%n {
			share++
		}
		c := asynq.Config{
			Concurrency:     share,
			Queues:          qs.Weights,
			StrictPriority:  qs.Strict,
			IsFailure:       IsFailure,
			RetryDelayFunc:  policy.RetryDelay,
			ShutdownTimeout: cfg.Worker.ShutdownTimeout,
			Logger:          asynqLogger{log.With("component", "asynq")},
			LogLevel:        asynq.WarnLevel,
			// Delayed jobs are handed over by the due forwarder; asynq's own
			// scan is left the retries (whole seconds anyway) and stragglers.
			DelayedTaskCheckInterval: time.Second,
			TaskCheckInterval:        cfg.Worker.PollInterval,
			GroupGracePeriod:         cfg.Escalation.Window,
			GroupMaxDelay:            10 * cfg.Escalation.Window,
			GroupMaxSize:             1000,
			GroupAggregator:          asynq.GroupAggregatorFunc(aggregate),
		}
		if i > 0 {
			// An idle worker is watched by its first fetcher; the others only
			// matter under load, when they do not sleep at all. So they poll
			// slowly when idle, sparing Redis (each poll costs one script per
			// queue).
			c.DelayedTaskCheckInterval = 5 * time.Second
			c.TaskCheckInterval = max(cfg.Worker.PollInterval, 250*time.Millisecond)
		}
		w.servers = append(w.servers, asynq.NewServerFromRedisClient(rdb, c))
	}
	return w, nil
}

// Queues returns what the worker works.
func (w *Worker) Queues() QueueSet { return w.queues }

// ErrForcedExit is returned when a second signal cut the graceful stop short.
var ErrForcedExit = errors.New("stopped at once by a second signal; unfinished jobs return to their queues when their lease expires")

// Run works jobs until ctx ends or a signal arrives on sigs. Then it stops
// taking jobs, lets running ones finish within shutdown_timeout and puts the
// rest back. A second signal returns ErrForcedExit at once.
func (w *Worker) Run(ctx context.Context, sigs <-chan os.Signal) error {
	for i, srv := range w.servers {
		if err := srv.Start(w.policy); err != nil {
			for _, started := range w.servers[:i] {
				started.Shutdown()
			}
			return fmt.Errorf("worker: start: %w", err)
		}
	}
	mctx, stopMetrics := context.WithCancel(context.Background())
	metricsDone := make(chan struct{})
	go func() { w.metrics.Run(mctx, time.Second); close(metricsDone) }()
	go w.due.run(mctx)
	w.log.Info("worker started", "queues", w.queues.String(), "fetchers", len(w.servers))

	select {
	case <-ctx.Done():
	case s := <-sigs:
		w.log.Info("stopping: no new jobs; running jobs may finish", "signal", s.String(), "shutdown_timeout", w.timeout.String())
	}
	for _, srv := range w.servers {
		srv.Stop() // stop fetching at once, everywhere
	}
	done := make(chan struct{})
	go func() {
		var wg sync.WaitGroup
		for _, srv := range w.servers {
			wg.Add(1)
			go func() { defer wg.Done(); srv.Shutdown() }()
		}
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case s := <-sigs:
		w.log.Warn("second signal: exiting now", "signal", s.String())
		stopMetrics()
		return ErrForcedExit
	}
	stopMetrics()
	<-metricsDone
	w.log.Info("worker stopped")
	return nil
}

// asynqLogger sends asynq's own log lines to slog.
type asynqLogger struct{ l *slog.Logger }

func (a asynqLogger) Debug(args ...any) { a.l.Debug(fmt.Sprint(args...)) }
func (a asynqLogger) Info(args ...any)  { a.l.Info(fmt.Sprint(args...)) }
func (a asynqLogger) Warn(args ...any)  { a.l.Warn(fmt.Sprint(args...)) }
func (a asynqLogger) Error(args ...any) { a.l.Error(fmt.Sprint(args...)) }
func (a asynqLogger) Fatal(args ...any) { a.l.Error(fmt.Sprint(args...)); os.Exit(1) }
