package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/metrics"
	"github.com/errandhq/errand/internal/rdb"
	"github.com/errandhq/errand/internal/redisconn"
	"github.com/errandhq/errand/internal/workerid"
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
				return qs, fmt.Errorf("--queues: queue %q is not configured (configured: %s)", name, strings.Join(slices.Sorted(maps.Keys(configured)), ", "))
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
		qs.Order = slices.Sorted(maps.Keys(qs.Weights))
	}
	sort.SliceStable(qs.Order, func(i, j int) bool { return qs.Weights[qs.Order[i]] > qs.Weights[qs.Order[j]] })
	return qs, nil
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
// errand's fetcher (fetch.go) takes the jobs and runs them under the policy;
// one asynq server runs the engine's background duties beside it (whole-second
// schedules, recovery of lost workers' jobs, expired results, the escalation
// digest's aggregation, heartbeats), with its own dequeue answered "nothing
// pending" (rdb.SilenceAsynqDequeue).
type Worker struct {
	id          string // in whose name its leases are held (see internal/workerid)
	engine      *asynq.Server
	closeEngine func() error // the engine's connection, when it has its own
	fetch       *fetcher
	due         *dueForwarder
	policy      *Policy
	metrics     *metrics.Recorder
	rdb         *rdb.RDB
	queues      QueueSet
	timeout     time.Duration
	log         *slog.Logger
}

// dueCheck is how often the due forwarder looks at the scheduled and retry
// sets when it knows of nothing due sooner: for jobs put there by others
// than errand (asynq's recoverer). Jobs errand schedules wake it themselves.
const dueCheck = 5 * time.Second

// WorkerOptions are what a worker runs besides its configuration.
type WorkerOptions struct {
	// Policy runs each job (see NewPolicy); the worker flushes its metrics.
	Policy *Policy
	// Aggregate makes one job of a group's jobs (the escalation digest);
	// nil leaves groups alone.
	Aggregate Aggregator
}

// NewWorker returns a worker for cfg.Worker over c, running jobs under
// opts.Policy.
func NewWorker(cfg *config.Config, c redis.UniversalClient, log *slog.Logger, opts WorkerOptions) (*Worker, error) {
	qs, err := ParseQueues(cfg.Worker.Queues, cfg.Queues, cfg.Worker.Strict)
	if err != nil {
		return nil, err
	}
	policy := opts.Policy
	r, id := rdb.New(c), workerid.New()
	w := &Worker{id: id, policy: policy, metrics: policy.metrics, rdb: r, queues: qs, timeout: cfg.Worker.ShutdownTimeout, log: log,
		due:   newDueForwarder(r, qs.Order, dueCheck, log),
		fetch: newFetcher(r.AsWorker(id), policy, qs, cfg.Worker.Concurrency, cfg.Worker.Fetchers, cfg.Worker.PollInterval, log),
	}
	engineRedis, closeEngine := redisconn.EngineClient(cfg.Redis, c)
	// Whatever the client, the engine's processor takes no job: errand's
	// fetcher takes them all.
	rdb.SilenceAsynqDequeue(engineRedis)
	w.closeEngine = closeEngine
	w.engine = asynq.NewServerFromRedisClient(engineRedis, asynq.Config{
		// Its dequeue is silenced, so its concurrency is only what the
		// dashboard shows for this worker: the fetcher's.
		Concurrency:     cfg.Worker.Concurrency,
		Queues:          qs.Weights,
		StrictPriority:  qs.Strict,
		IsFailure:       IsFailure,
		RetryDelayFunc:  policy.RetryDelay,
		ShutdownTimeout: cfg.Worker.ShutdownTimeout,
		Logger:          asynqLogger{log.With("component", "asynq")},
		LogLevel:        asynq.WarnLevel,
		// Delayed jobs and retries are handed over by the due forwarder at
		// their exact time; asynq's own scan is only the safety net.
		DelayedTaskCheckInterval: 5 * time.Second,
		TaskCheckInterval:        time.Second,
		GroupGracePeriod:         cfg.Escalation.Window,
		GroupMaxDelay:            10 * cfg.Escalation.Window,
		GroupMaxSize:             1000,
		GroupAggregator:          opts.Aggregate.engine(),
	})
	return w, nil
}

// Queues returns what the worker works.
func (w *Worker) Queues() QueueSet { return w.queues }

// SetBudget makes w take no more jobs than b allows; call it before Run.
func (w *Worker) SetBudget(b Budget) { w.fetch.budget = b }

// Running returns how many jobs w is running.
func (w *Worker) Running() int { return w.fetch.count() }

// ErrForcedExit is returned when a second signal cut the graceful stop short.
var ErrForcedExit = errors.New("stopped at once by a second signal; unfinished jobs return to their queues when their lease expires")

// Run works jobs until ctx ends or a signal arrives on sigs. Then it stops
// taking jobs, lets running ones finish within shutdown_timeout and puts the
// rest back. A second signal returns ErrForcedExit at once.
func (w *Worker) Run(ctx context.Context, sigs <-chan os.Signal) error {
	if err := w.engine.Start(w.policy); err != nil {
		_ = w.closeEngine()
		return fmt.Errorf("worker: start: %w", err)
	}
	bgctx, stopBG := context.WithCancel(context.Background())
	var bgwg sync.WaitGroup
	goBG := func(f func()) {
		bgwg.Add(1)
		go func() { defer bgwg.Done(); f() }()
	}
	if w.metrics != nil {
		goBG(func() { w.metrics.Run(bgctx, time.Second) })
	}
	goBG(func() { w.due.run(bgctx) })
	goBG(func() { subscribe(bgctx, w.rdb, w.fetch.poke, w.due.due) })
	goBG(func() { w.fetch.leaseLoop(bgctx) })
	goBG(func() { w.fetch.recoverLoop(bgctx) })
	ackDone := make(chan struct{})
	go func() { w.fetch.ackLoop(); close(ackDone) }()
	w.fetch.runners()
	fctx, stopFetching := context.WithCancel(context.Background())
	var fetchers sync.WaitGroup
	for range w.fetch.loops {
		fetchers.Add(1)
		go func() { defer fetchers.Done(); w.fetch.loop(fctx) }()
	}
	w.log.Info("worker started", "queues", w.queues.String(), "concurrency", cap(w.fetch.slots), "id", w.id)

	select {
	case <-ctx.Done():
	case s := <-sigs:
		w.log.Info("stopping: no new jobs; running jobs may finish", "signal", s.String(), "shutdown_timeout", w.timeout.String())
	}
	stopFetching()
	w.engine.Stop()
	stopped := make(chan struct{})
	go func() {
		fetchers.Wait()
		close(w.fetch.jobs)
		jobsDone := make(chan struct{})
		go func() { w.fetch.wg.Wait(); close(jobsDone) }()
		t := time.NewTimer(w.timeout)
		select {
		case <-jobsDone:
		case <-t.C:
			// Time is up: the jobs still running are stopped and go back to
			// their queues.
			w.log.Warn("shutdown timeout: putting unfinished jobs back", "running", w.fetch.count())
			w.fetch.stopJob()
			<-jobsDone
		}
		t.Stop()
		close(w.fetch.acks)
		<-ackDone
		w.engine.Shutdown()
		close(stopped)
	}()
	select {
	case <-stopped:
	case s := <-sigs:
		w.log.Warn("second signal: exiting now", "signal", s.String())
		stopBG()
		return ErrForcedExit
	}
	w.fetch.stopJob()
	stopBG()
	bgwg.Wait()
	_ = w.closeEngine()
	w.policy.successes.Flush()
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
