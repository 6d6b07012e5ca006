package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/metrics"
	"github.com/errandhq/errand/internal/rdb"
	"github.com/errandhq/errand/internal/redact"
	"github.com/errandhq/errand/internal/worklog"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// timeoutGrace is how much later than errand's own timeout asynq's deadline
// falls, so a job that overruns is always classified by the policy.
const timeoutGrace = 5 * time.Second

// Policy is errand's failure policy: the one place that runs a job and decides,
// from its error's class and the attempts it has used, whether and when it runs
// again, and when a failure is final and escalated.
//
// Each concern is one middleware (middleware.go), composed once by NewPolicy
// around the registry's handlers, outermost first:
//
//	ordered → measured → calledBack → escalated → logged → classified → timedOut → recovered → the job's Work
//
// asynq's own retry limit is set out of reach (maxRetrySentry) because asynq
// would archive a job whose last attempt was merely throttled; errand counts
// attempts here instead. asynq's retry counter is still the source of truth for
// attempts used: a throttled retry does not increase it, a transient failure or a
// worker lost mid-job does.
type Policy struct {
	reg      *job.Registry
	redact   *redact.Redactor
	metrics  *metrics.Recorder
	log      *slog.Logger
	escalate func(context.Context, Ending) error
	callBack func(context.Context, Ending) error
	now      func() time.Time
	order    *rdb.RDB // nil: ordered types run unordered
	handle   Handler  // the middlewares around the job's Work
	// successes decides which jobs done get a line of their own.
	successes *worklog.Successes
	history   Recorder // nil: no history
}

// PolicyConfig is what a Policy works with.
type PolicyConfig struct {
	Registry *job.Registry
	Log      *slog.Logger
	// Redactor masks secrets in the errors and payloads that leave the
	// worker; nil masks the default secret words.
	Redactor *redact.Redactor
	// Metrics counts attempts; nil counts nothing.
	Metrics *metrics.Recorder
	// Escalate queues a final failure for the developers' digest. When it
	// fails, the failure is logged in full at ERROR instead: that line is the
	// escalation. Nil: final failures are only logged.
	Escalate func(ctx context.Context, f Ending) error
	// CallBack queues the report of how a job queued with a callback ended.
	// Nil: no callbacks are sent.
	CallBack func(ctx context.Context, o Ending) error
	// Redis keeps the order of ordered job types (job.Defaults.OrderBy).
	// Nil: their jobs run unordered.
	Redis redis.UniversalClient
	// History records each attempt's outcome; nil records none.
	History Recorder
}

// Recorder keeps the history of attempts (internal/history). Failed returns
// once the final failure is durable (or it gave up, saying so): the fetcher
// archives the job after it.
type Recorder interface {
	Done(j *rdb.Fetched)
	Retry(j *rdb.Fetched, errMsg string)
	Failed(j *rdb.Fetched, errMsg string)
}

// NewPolicy returns the policy for the jobs in c.Registry.
func NewPolicy(c PolicyConfig) *Policy {
	p := &Policy{
		reg: c.Registry, redact: c.Redactor, metrics: c.Metrics, log: c.Log,
		escalate: c.Escalate, callBack: c.CallBack, now: time.Now, history: c.History,
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	p.successes = worklog.NewSuccesses(p.log)
	if c.Redis != nil {
		p.order = rdb.New(c.Redis)
	}
	p.handle = chain(work, p.ordered, p.measured, p.calledBack, p.escalated, p.logged, p.classified, p.timedOut, p.recovered)
	return p
}

// Ending is how a job ended, as the policy hands it to its hooks (Escalate,
// CallBack) and writes it to the log: completed, or failed for good.
type Ending struct {
	ID, Type, Queue string
	State           string // "completed" or "failed"
	Attempts        int    // attempts used

	// Failures only.
	MaxAttempts int
	Class       string // of the last error: transient, throttled or permanent
	Error       string // the last error, redacted
	Payload     string // the job's payload, redacted
	QueuedAt    time.Time
	FailedAt    time.Time
}

// LogAttrs are a failure's details as log attributes: what the escalation
// email says, so that a log line can stand in for it.
func (e Ending) LogAttrs() []any {
	return []any{
		"job_id", e.ID, "type", e.Type, "queue", e.Queue,
		"attempts", e.Attempts, "max_attempts", e.MaxAttempts,
		"class", e.Class, "error", e.Error,
		"queued_at", e.QueuedAt.UTC().Format(time.RFC3339),
		"failed_at", e.FailedAt.UTC().Format(time.RFC3339),
		"payload", e.Payload,
	}
}

// verdict is the policy's decision about one failed attempt. It travels to
// asynq and errand's fetcher on the returned error, where IsFailure and
// RetryDelay read it, and to the outer middlewares.
type verdict struct {
	err      error
	text     string // err as shown outside the worker: redacted, shortened
	class    errand.Class
	counts   bool          // the attempt is used up
	final    bool          // no further attempt
	wait     time.Duration // until the next attempt
	attempts int           // attempts used, as reported
	at       time.Time     // when the verdict was made

	escalated bool    // a final failure queued for the digest
	ending    *Ending // the failure as reported, once made (see Policy.ending)
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

// verdictOf returns the verdict err carries, or nil: an error without one is
// a job interrupted by shutdown.
func verdictOf(err error) *verdict {
	var v *verdict
	if errors.As(err, &v) {
		return v
	}
	return nil
}

// judge decides what a failed attempt means.
func (p *Policy) judge(def *job.Definition, retried int, queuedAt time.Time, err error) *verdict {
	class, wait := errand.ClassOf(err)
	now := p.now()
	v := &verdict{err: err, class: class, attempts: retried + 1, at: now}
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

// refuse returns the verdict on an attempt that must not run, or nil: a job
// no handler here can run (it would otherwise sit in the retry set for ever),
// or one whose last attempt was used by a worker lost mid-job.
func (p *Policy) refuse(a *Attempt) *verdict {
	var v *verdict
	switch {
	case a.Def.Work == nil:
		err := fmt.Errorf("no handler for job type %q in this worker", a.Def.Type)
		if _, lerr := p.reg.Lookup(a.Def.Type); lerr != nil {
			err = lerr
		}
		v = &verdict{err: err, class: errand.Permanent, counts: true, final: true, attempts: a.Number()}
	case !a.Def.Unbounded && a.Retried >= a.Def.MaxAttempts:
		v = &verdict{err: fmt.Errorf("all %d attempts used (the worker running the last one was lost)", a.Def.MaxAttempts),
			class: errand.Transient, final: true, attempts: a.Retried}
	default:
		return nil
	}
	v.at = p.now()
	v.text = p.redact.Text(v.err.Error())
	return v
}

// ending is the final failure v of a as reported: made once, since the
// log, the escalation and the callback all show it.
func (p *Policy) ending(a *Attempt, v *verdict) Ending {
	if v.ending == nil {
		v.ending = &Ending{
			ID: a.ID, Type: a.Def.Type, Queue: a.Queue, State: "failed",
			Attempts: v.attempts, MaxAttempts: a.Def.MaxAttempts,
			Class: v.class.String(), Error: v.Error(), Payload: p.redact.Payload(a.Payload),
			QueuedAt: a.QueuedAt, FailedAt: v.at,
		}
	}
	return *v.ending
}

// IsFailure tells asynq whether a failed attempt counts.
func IsFailure(err error) bool {
	if v := verdictOf(err); v != nil {
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
	if v := verdictOf(err); v != nil {
		return v.wait
	}
	// A failure the policy did not see, e.g. a worker lost mid-job.
	if def, lerr := p.reg.Lookup(task.Type()); lerr == nil {
		return def.BackoffFor(retried + 1)
	}
	return job.DefaultBackoff()[0]
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
	a := &Attempt{Payload: task.Payload(), Callback: task.Headers()[headerCallback] != "", orderKey: task.Headers()[headerOrder]}
	if m, ok := ctx.Value(metaKey{}).(jobMeta); ok {
		a.ID, a.Queue, a.Retried = m.id, m.queue, m.retried
	} else {
		a.ID, _ = asynq.GetTaskID(ctx)
		a.Retried, _ = asynq.GetRetryCount(ctx)
		a.Queue, _ = asynq.GetQueueName(ctx)
	}
	var ok bool
	if a.QueuedAt, ok = headerMillis(task.Headers(), headerQueued); !ok {
		a.QueuedAt, _ = job.IDTime(a.ID) // left out when the ID tells it
	}
	def, err := p.reg.Lookup(task.Type())
	if err != nil {
		// Refused unrun (see refuse), as its only attempt.
		def = &job.Definition{Type: task.Type(), Queue: a.Queue, MaxAttempts: 1}
	}
	a.Def = def
	ctx, a.log = job.WithLogger(ctx, func() *slog.Logger {
		return p.log.With("job_id", a.ID, "type", task.Type(), "queue", a.Queue, "attempt", a.Number())
	})
	return p.handle(ctx, a)
}
