package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/metrics"
	"github.com/errandhq/errand/internal/redact"
)

// Attempt is one run of a job, as the policy's middlewares see it.
type Attempt struct {
	ID    string
	Queue string
	// Def is the job's type; for a type this worker does not know, a
	// stand-in without Work.
	Def      *job.Definition
	Retried  int       // attempts used before this one
	QueuedAt time.Time // when the job was first queued; zero when unknown
	Payload  []byte
	Callback bool          // how it ends is reported to a callback URL
	Took     time.Duration // how long its handler ran; zero when it did not run

	orderKey string // the ordering key it was queued with; "" when none

	log func() *slog.Logger
}

// Number is the attempt's number, from 1.
func (a *Attempt) Number() int { return a.Retried + 1 }

// Log returns the job's logger (see job.Logger).
func (a *Attempt) Log() *slog.Logger { return a.log() }

// Handler runs one attempt of a job. A failed attempt's error carries the
// policy's verdict once it has passed the classified middleware.
type Handler func(ctx context.Context, a *Attempt) error

// Middleware is one concern of the failure policy, wrapped around a Handler.
type Middleware func(Handler) Handler

// chain wraps h in mws, the first outermost.
func chain(h Handler, mws ...Middleware) Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// work runs the job's handler: the innermost Handler.
func work(ctx context.Context, a *Attempt) error { return a.Def.Work(ctx, a.Payload) }

// maxPanicShown is how much of a panic's value the job's error keeps.
const maxPanicShown = 300

// recovered turns a panic into an error the policy can classify. The stack
// goes to the log only: the job's error travels to API answers, callbacks and
// emails, where a stack tells an outsider the program's insides and helps no
// one.
func (p *Policy) recovered(next Handler) Handler {
	return func(ctx context.Context, a *Attempt) (err error) {
		defer func() {
			if r := recover(); r != nil {
				value := p.redact.Text(fmt.Sprint(r))
				a.Log().Error("job panicked", "panic", value, "stack", string(debug.Stack()))
				err = fmt.Errorf("panic: %s", redact.Cut(value, maxPanicShown))
			}
		}()
		return next(ctx, a)
	}
}

// timedOut runs the handler with the job's timeout and records how long it
// ran. A handler that ignores its context is not waited for past the
// timeout; an overrun is a transient failure.
func (p *Policy) timedOut(next Handler) Handler {
	return func(ctx context.Context, a *Attempt) error {
		jctx, cancel := context.WithTimeout(ctx, a.Def.Timeout)
		defer cancel()
		start := p.now()
		done := make(chan error, 1)
		go func() { done <- next(jctx, a) }()
		var err error
		select {
		case err = <-done:
		case <-jctx.Done():
			err = jctx.Err()
		}
		a.Took = p.now().Sub(start)
		if err != nil && ctx.Err() == nil && errors.Is(jctx.Err(), context.DeadlineExceeded) {
			err = errand.TransientError(fmt.Errorf("timed out after %s: %w", a.Def.Timeout, err))
		}
		return err
	}
}

// classified turns a failed attempt's error into the policy's verdict (see
// judge), and refuses an attempt that must not run (see refuse). An attempt
// stopped by the worker's shutdown keeps its bare error: asynq and the
// fetcher put the job back, and it is no attempt.
func (p *Policy) classified(next Handler) Handler {
	return func(ctx context.Context, a *Attempt) error {
		if v := p.refuse(a); v != nil {
			return v
		}
		err := next(ctx, a)
		if err == nil || (ctx.Err() != nil && errors.Is(err, ctx.Err())) {
			return err
		}
		return p.judge(a.Def, a.Retried, a.QueuedAt, err)
	}
}

// logged writes how the attempt went: done at INFO while few are done a
// second, else counted in a summary line (see worklog.Successes); WARN when
// it will run again, ERROR when it failed for good.
func (p *Policy) logged(next Handler) Handler {
	return func(ctx context.Context, a *Attempt) error {
		err := next(ctx, a)
		v := verdictOf(err)
		switch {
		case err == nil:
			if level, ok := p.successes.Line(); ok {
				a.Log().Log(ctx, level, "job done", "took", a.Took.Round(time.Millisecond))
			}
		case v == nil:
			a.Log().Warn("job interrupted by shutdown", "error", err)
		case !v.final && a.Def.Unbounded: // its error's class decides nothing: it must go out
			a.Log().Warn("job failed, will retry until it succeeds (attempts not counted; gives up after policy.throttle_deadline)", "retry_in", v.wait.Round(time.Millisecond), "error", v.Error())
		case !v.final:
			// The fetcher puts the job in the retry set at its exact time (a
			// throttled service's wait is respected to the millisecond).
			a.Log().Warn("job failed, will retry", "class", v.class.String(), "counts", v.counts, "retry_in", v.wait.Round(time.Millisecond), "error", v.Error())
		case !a.Def.Unbounded: // an escalation that gave up is logged by escalated
			p.log.With("attempt", v.attempts).Error("job failed for good", p.ending(a, v).LogAttrs()...)
		}
		return err
	}
}

// escalated queues a final failure for the developers' digest. The job then
// goes to the failed list (asynq's archive).
func (p *Policy) escalated(next Handler) Handler {
	return func(ctx context.Context, a *Attempt) error {
		err := next(ctx, a)
		v := verdictOf(err)
		if v == nil || !v.final {
			return err
		}
		log := p.log.With("attempt", v.attempts)
		if a.Def.Unbounded {
			// An escalation that could not be sent for a whole deadline: the
			// last resort is the log, which carries every failure it held.
			// Its payload is a digest, whose failures were redacted when queued.
			log.Error("escalation gave up", "job_id", a.ID, "type", a.Def.Type, "queue", a.Queue, "error", v.Error(), "payload", string(a.Payload))
			return err
		}
		if p.escalate == nil {
			return err
		}
		f := p.ending(a, v)
		// Not the job's context: a job failing as the worker stops is
		// escalated all the same.
		if eerr := p.escalate(context.WithoutCancel(ctx), f); eerr != nil {
			log.Error("escalation could not be queued; this log line is the escalation", append(f.LogAttrs(), "queue_error", eerr.Error())...)
		} else {
			v.escalated = true
		}
		return err
	}
}

// calledBack queues the report of how a job queued with a callback ended:
// completed, or failed for good. A report that cannot be queued is logged:
// the job's state stays readable with GET /api/jobs/{id}.
func (p *Policy) calledBack(next Handler) Handler {
	return func(ctx context.Context, a *Attempt) error {
		err := next(ctx, a)
		if !a.Callback || p.callBack == nil {
			return err
		}
		var o Ending
		switch v := verdictOf(err); {
		case err == nil:
			o = Ending{ID: a.ID, Type: a.Def.Type, Queue: a.Queue, State: "completed", Attempts: a.Number()}
		case v != nil && v.final && !a.Def.Unbounded:
			o = p.ending(a, v)
		default:
			return err
		}
		if cerr := p.callBack(context.WithoutCancel(ctx), o); cerr != nil {
			a.Log().Error("callback could not be queued", "state", o.State, "error", cerr.Error())
		}
		return err
	}
}

// measured counts the attempt by how it ended, and a final failure's
// escalation. An attempt stopped by shutdown is not counted.
func (p *Policy) measured(next Handler) Handler {
	return func(ctx context.Context, a *Attempt) error {
		err := next(ctx, a)
		v := verdictOf(err)
		switch {
		case err == nil:
			p.metrics.Observe(a.Def.Type, a.Queue, a.Took, metrics.Done)
		case v == nil:
		case !v.final:
			p.metrics.Observe(a.Def.Type, a.Queue, a.Took, metrics.Retry)
		default:
			p.metrics.Observe(a.Def.Type, a.Queue, a.Took, metrics.Failed)
			if v.escalated {
				p.metrics.Escalated(a.Def.Type, a.Queue)
			}
		}
		return err
	}
}
