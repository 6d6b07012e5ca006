package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/errandhq/errand"
	"github.com/hibiken/asynq"
)

// timeoutGrace is how much later than errand's own timeout asynq's deadline
// falls, so a job that overruns is always classified by the policy.
const timeoutGrace = 5 * time.Second

// Policy is errand's failure policy: the one place that runs a job and decides,
// from its error's class and the attempts it has used, whether and when it runs
// again, and when a failure is final and escalated.
//
// asynq's own retry limit is set out of reach (maxRetrySentry) because asynq
// would archive a job whose last attempt was merely throttled; errand counts
// attempts here instead. asynq's retry counter is still the source of truth for
// attempts used: a throttled retry does not increase it, a transient failure or a
// worker lost mid-job does.
type Policy struct {
	reg       *Registry
	escalator *Escalator
	metrics   *Metrics
	redact    *Redactor
	log       *slog.Logger
	now       func() time.Time
}

// NewPolicy returns the policy for the jobs in reg.
func NewPolicy(reg *Registry, esc *Escalator, m *Metrics, log *slog.Logger) *Policy {
	return &Policy{reg: reg, escalator: esc, metrics: m, redact: esc.redact, log: log, now: time.Now}
}

// verdict is the policy's decision about one failed attempt. It travels to
// asynq on the returned error, where IsFailure and RetryDelay read it.
type verdict struct {
	err    error
	text   string // err as shown outside the worker: redacted, shortened
	class  errand.Class
	counts bool          // the attempt is used up
	final  bool          // no further attempt
	wait   time.Duration // until the next attempt
}

// Error is the text stored as the job's last error, so it is the redacted one:
// from there it reaches GET /api/jobs, the dashboard and `errand failed`.
func (v *verdict) Error() string {
	if v.text != "" {
		return v.text
	}
	return v.err.Error()
}

func (v *verdict) Unwrap() []error {
	if v.final {
		return []error{v.err, asynq.SkipRetry}
	}
	return []error{v.err}
}

// judge decides what a failed attempt means.
func (p *Policy) judge(def *Definition, retried int, queuedAt time.Time, err error) *verdict {
	class, wait := errand.ClassOf(err)
	v := &verdict{err: err, class: class}
	now := p.now()
	used := retried + 1
	pastDeadline := func(w time.Duration) bool {
		return !queuedAt.IsZero() && now.Add(w).After(queuedAt.Add(def.ThrottleDeadline))
	}
	switch {
	case def.Unbounded:
		// Retried until the deadline, with a backoff that grows with the time
		// already spent, since the attempts are not counted.
		v.wait = def.Backoff[0]
		if elapsed := now.Sub(queuedAt); !queuedAt.IsZero() && elapsed/2 > v.wait {
			v.wait = min(elapsed/2, def.Backoff[len(def.Backoff)-1])
		}
		v.final = pastDeadline(v.wait)
	case class == errand.Permanent:
		v.counts, v.final = true, true
	case class == errand.Throttled:
		v.wait = wait
		if v.wait <= 0 {
			v.wait = def.BackoffFor(1)
		}
		v.final = pastDeadline(v.wait)
		if v.final {
			v.err = fmt.Errorf("throttled past the %s deadline: %w", def.ThrottleDeadline, err)
		}
	default:
		v.counts = true
		v.wait = def.BackoffFor(used)
		v.final = used >= def.MaxAttempts
	}
	v.text = p.redact.Text(v.err.Error())
	return v
}

// IsFailure tells asynq whether a failed attempt counts.
func IsFailure(err error) bool {
	var v *verdict
	if errors.As(err, &v) {
		return v.counts
	}
	return true
}

// RetryDelay tells asynq how long to wait before the next attempt (asynq
// keeps retry times in whole seconds).
func (p *Policy) RetryDelay(retried int, err error, task *asynq.Task) time.Duration {
	return onWholeSecond(p.now(), p.retryWait(retried, err, task))
}

// retryWait is how long to wait before the next attempt.
func (p *Policy) retryWait(retried int, err error, task *asynq.Task) time.Duration {
	var v *verdict
	if errors.As(err, &v) {
		return v.wait
	}
	// A failure the policy did not see, e.g. a worker lost mid-job.
	if def, lerr := p.reg.Lookup(task.Type()); lerr == nil {
		return def.BackoffFor(retried + 1)
	}
	return 10 * time.Second
}

// onWholeSecond stretches wait so that now+wait falls on a whole second:
// asynq keeps retry times in whole seconds, rounded down, so without this a
// retry could start up to a second before the wait a service asked for.
func onWholeSecond(now time.Time, wait time.Duration) time.Duration {
	if wait <= 0 {
		return 0 // at once: nothing to round up to
	}
	at := now.Add(wait)
	if r := at.Truncate(time.Second); r.Before(at) {
		at = r.Add(time.Second)
	}
	return at.Sub(now)
}

// ProcessTask runs one attempt of a job under the policy.
func (p *Policy) ProcessTask(ctx context.Context, task *asynq.Task) error {
	var id, qname string
	var retried int
	if m, ok := ctx.Value(metaKey{}).(jobMeta); ok {
		id, qname, retried = m.id, m.queue, m.retried
	} else {
		id, _ = asynq.GetTaskID(ctx)
		retried, _ = asynq.GetRetryCount(ctx)
		qname, _ = asynq.GetQueueName(ctx)
	}
	attempt := retried + 1
	// The job's logger is made when first used: formatting its attributes
	// for every job would cost more than a no-op job itself.
	jl := &lazyLogger{make: func() *slog.Logger {
		return p.log.With("job_id", id, "type", task.Type(), "queue", qname, "attempt", attempt)
	}}
	queuedAt, ok := headerMillis(task.Headers(), headerQueued)
	if !ok {
		queuedAt, _ = idTime(id) // left out when the ID tells it
	}

	def, err := p.reg.Lookup(task.Type())
	if err != nil || def.run == nil {
		if err == nil {
			err = fmt.Errorf("no handler for job type %q in this worker", task.Type())
		}
		// A job no worker can run would otherwise sit in the retry set for ever.
		def = &Definition{Type: task.Type(), Queue: qname, MaxAttempts: 1}
		return p.fail(def, id, qname, attempt, queuedAt, task, &verdict{err: err, class: errand.Permanent, counts: true, final: true}, 0)
	}
	if !def.Unbounded && retried >= def.MaxAttempts {
		v := &verdict{err: fmt.Errorf("all %d attempts used (the worker running the last one was lost)", def.MaxAttempts), class: errand.Transient, final: true}
		return p.fail(def, id, qname, retried, queuedAt, task, v, 0)
	}
	start := p.now()
	err = p.run(context.WithValue(ctx, loggerKey{}, jl), def, task.Payload())
	took := p.now().Sub(start)
	if err == nil {
		p.metrics.observe(def.Type, qname, took, outcomeDone)
		// Debug: at thousands of jobs a second a line per success is the
		// bottleneck; failures are logged at WARN and ERROR.
		if p.log.Enabled(ctx, slog.LevelDebug) {
			jl.get().Debug("job done", "took", took.Round(time.Millisecond))
		}
		if task.Headers()[headerCallback] != "" {
			p.callBack(jl.get(), Outcome{ID: id, Type: def.Type, State: "completed", Attempts: attempt})
		}
		return nil
	}
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		// The worker is shutting down: asynq puts the job back; not an attempt.
		jl.get().Warn("job interrupted by shutdown", "error", err)
		return err
	}
	v := p.judge(def, retried, queuedAt, err)
	if !v.final {
		p.metrics.observe(def.Type, qname, took, outcomeRetry)
		jl.get().Warn("job failed, will retry", "class", v.class.String(), "counts", v.counts, "retry_in", v.wait.Round(time.Millisecond), "error", v.Error())
		// The fetcher puts the job in the retry set at its exact time (a
		// throttled service's wait is respected to the millisecond).
		return v
	}
	return p.fail(def, id, qname, attempt, queuedAt, task, v, took)
}

// maxPanicShown is how much of a panic's value the job's error keeps.
const maxPanicShown = 300

// run calls the handler with the job's timeout, turning a panic or an overrun
// into an error the policy can classify. A panic's stack goes to the log only:
// the job's error travels to API answers, callbacks and emails, where a stack
// tells an outsider the program's insides and helps no one.
func (p *Policy) run(ctx context.Context, def *Definition, payload []byte) (err error) {
	jctx, cancel := context.WithTimeout(ctx, def.Timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				value := p.redact.Text(fmt.Sprint(r))
				Logger(ctx).Error("job panicked", "panic", value, "stack", string(debug.Stack()))
				done <- fmt.Errorf("panic: %s", cut(value, maxPanicShown))
			}
		}()
		done <- def.run(jctx, payload)
	}()
	select {
	case err = <-done:
	case <-jctx.Done():
		// The handler ignored its context; do not wait for it any longer.
		err = jctx.Err()
	}
	if err != nil && ctx.Err() == nil && errors.Is(jctx.Err(), context.DeadlineExceeded) {
		err = errand.TransientError(fmt.Errorf("timed out after %s: %w", def.Timeout, err))
	}
	return err
}

// fail records a final failure and escalates it. The job then goes to the
// failed list (asynq's archive).
func (p *Policy) fail(def *Definition, id, qname string, attempts int, queuedAt time.Time, task *asynq.Task, v *verdict, took time.Duration) error {
	v.final = true
	if v.text == "" {
		v.text = p.redact.Text(v.err.Error())
	}
	p.metrics.observe(def.Type, qname, took, outcomeFailed)
	f := Failure{
		ID: id, Type: def.Type, Queue: qname,
		Attempts: attempts, MaxAttempts: def.MaxAttempts,
		Class: v.class.String(), Error: v.Error(),
		QueuedAt: queuedAt, FailedAt: p.now(),
	}
	log := p.log.With("attempt", attempts)
	if def.Unbounded {
		// An escalation that could not be sent for a whole deadline: the last
		// resort is the log, which carries every failure it held.
		// Its payload is a digest, whose failures were redacted when queued.
		log.Error("escalation gave up", "job_id", id, "type", def.Type, "queue", qname, "error", v.Error(), "payload", string(task.Payload()))
		return v
	}
	if task.Headers()[headerCallback] != "" {
		p.callBack(log, Outcome{ID: id, Type: def.Type, State: "failed", Attempts: attempts, Error: v.Error()})
	}
	f.Payload = p.redact.Payload(task.Payload())
	log.Error("job failed for good", f.LogAttrs()...)
	if err := p.escalator.Escalate(f); err != nil {
		log.Error("escalation could not be queued; this log line is the escalation", append(f.LogAttrs(), "queue_error", err.Error())...)
	} else {
		p.metrics.escalated(def.Type, qname)
	}
	return v
}

// callBack queues the report of a job's outcome to its callback URL. A report
// that cannot be queued is logged: the job's state stays readable with
// GET /api/jobs/{id}.
func (p *Policy) callBack(log *slog.Logger, o Outcome) {
	if err := p.escalator.report(o); err != nil {
		log.Error("callback could not be queued", "state", o.State, "error", err.Error())
	}
}

type loggerKey struct{}

// Logger returns the job's logger: its lines carry the job's id, type, queue
// and attempt. Handlers log through it.
func Logger(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*lazyLogger); ok {
		return l.get()
	}
	return slog.Default()
}

// lazyLogger makes a job's logger the first time it is needed.
type lazyLogger struct {
	once sync.Once
	l    *slog.Logger
	make func() *slog.Logger
}

func (z *lazyLogger) get() *slog.Logger {
	z.once.Do(func() { z.l = z.make() })
	return z.l
}
