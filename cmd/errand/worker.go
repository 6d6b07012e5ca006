package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/errandhq/errand/internal/lifetime"
	"github.com/errandhq/errand/internal/metrics"
	"github.com/errandhq/errand/internal/queue"
	"github.com/errandhq/errand/internal/redact"
	"github.com/errandhq/errand/internal/schedule"
	"github.com/errandhq/errand/jobs"
)

func cmdWorker(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	f := newFlags("worker", "worker [--queues LIST] [--concurrency N] [--strict] [--max-jobs N] [--max-time D] [--stop-when-empty]", stderr)
	f.String("queues", "", `queues to work: "emails,crm" in that order of priority, or "emails:3,crm:1" by weight (default: every queue of [queues] with its weight, and every job type's queue)`)
	f.Int("concurrency", 0, "jobs run at once (overrides worker.concurrency)")
	f.Bool("strict", false, "strict priority: always drain higher-weighted queues first")
	f.overrides("queues", "worker.queues")
	f.overrides("concurrency", "worker.concurrency")
	f.overrides("strict", "worker.strict")
	maxJobs := f.String("max-jobs", "", "stop after taking `N` jobs, as gracefully as on SIGTERM, with exit status 0")
	maxTime := f.String("max-time", "", "stop after `D` (a duration such as 30m), counted from when the worker starts taking jobs, as gracefully as on SIGTERM, with exit status 0")
	whenEmpty := f.Bool("stop-when-empty", false, "stop once the worker runs nothing and its queues have nothing due (scheduled jobs and retries due later do not count), as gracefully as on SIGTERM, with exit status 0")
	if _, err := f.parse(args); err != nil {
		return err
	}
	limits, err := lifetime.Parse(*maxJobs, *maxTime, *whenEmpty)
	if err != nil {
		return err
	}
	a, err := f.open(environ)
	if err != nil {
		return err
	}
	defer a.close()
	cfg := a.cfg
	entries, err := schedule.Parse(cfg.Schedule, a.reg)
	if err != nil {
		return err
	}
	w, err := a.newWorker(ctx)
	if err != nil {
		return err
	}
	if cfg.Worker.Nice > 0 {
		// Jobs are background work: where the worker shares a machine with
		// `errand serve`, requests (a bcrypt hash, say) get the CPU first.
		if err := lowerPriority(cfg.Worker.Nice); err != nil {
			a.log.Warn("could not lower the worker's CPU priority", "nice", cfg.Worker.Nice, "error", err.Error())
		}
	}
	// A worker started while Redis is briefly away (a restart, a deploy in the
	// wrong order) waits for it instead of exiting.
	for {
		err := a.pingRedis(ctx)
		if err == nil {
			break
		}
		var refused *redisRefusedError
		if errors.As(err, &refused) {
			return err
		}
		a.log.Warn("waiting for Redis", "error", err.Error())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(2 * time.Second):
		}
	}
	a.warnIfEvicting(ctx)
	// [[schedule]]: every worker runs the scheduler; each tick is queued once.
	sctx, stopScheduler := context.WithCancel(ctx)
	scheduled := make(chan struct{})
	go func() { defer close(scheduled); schedule.New(entries, a.reg, a.rdb, a.log).Run(sctx) }()
	defer func() { stopScheduler(); <-scheduled }()
	if _, ok := w.Queues().Weights["critical"]; !ok {
		a.log.Warn("this worker does not work the critical queue: escalation emails need a worker that does")
	}
	// The worker takes the signals itself: the first one stops it gracefully,
	// a second one exits at once.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	// A limit stops the worker as the first signal would: by ending runCtx.
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	if limits.Any() {
		life := lifetime.New(limits, a.log.With("shutdown_timeout", cfg.Worker.ShutdownTimeout.String()))
		w.SetBudget(life)
		go life.Run(runCtx, stopRun, lifetime.Idle(w.Running, a.rdb, w.Queues().Order))
	}
	err = w.Run(runCtx, sigs)
	if errors.Is(err, queue.ErrForcedExit) {
		// At once means at once: the fetchers are still running, so nothing
		// is closed under them; jobs in flight come back when their lease
		// runs out.
		fmt.Fprintln(stderr, "errand: "+err.Error())
		os.Exit(1)
	}
	return err
}

// newWorker builds the handlers of the jobs this worker runs, then the
// worker and its failure policy: metrics, redaction, escalation of final
// failures (merged into digests by the worker's engine) and callbacks.
func (a *app) newWorker(ctx context.Context) (*queue.Worker, error) {
	// The queues errand works are the registry's: [queues], and every job
	// type's queue, with weight 1 where [queues] does not list it.
	cfg := *a.cfg
	cfg.Queues = a.reg.Queues()
	qs, err := queue.ParseQueues(cfg.Worker.Queues, cfg.Queues, cfg.Worker.Strict)
	if err != nil {
		return nil, err
	}
	if err := a.handle(ctx, func(q string) bool { _, ok := qs.Weights[q]; return ok }); err != nil {
		return nil, err
	}
	hist, stop := a.startHistory(ctx)
	a.stopHistory = stop
	policy := queue.NewPolicy(queue.PolicyConfig{
		Registry: a.reg, Log: a.log,
		Redactor: redact.New(a.cfg.Escalation.Redact),
		Metrics:  metrics.NewRecorder(a.rdb, a.log),
		Escalate: jobs.NewEscalator(a.reg, queue.NewGroups(a.reg, a.rdb)).Escalate,
		CallBack: jobs.NewCallbacks(a.reg, queue.NewClient(a.reg, a.rdb)).Report,
		Redis:    a.rdb,
		History:  hist,
	})
	return queue.NewWorker(&cfg, a.rdb, a.log, queue.WorkerOptions{Policy: policy, Aggregate: jobs.MergeDigests})
}
