package queue

import (
	"context"
	"fmt"
	"time"

	"github.com/errandhq/errand"
)

// How long an ordered job that is not yet its turn waits before it asks
// again: orderStep for each job ahead of it, at most orderWaitMax. It waits
// in the retry set, as a throttled job does: no goroutine held, no attempt
// used.
const (
	orderStep    = 250 * time.Millisecond
	orderWaitMax = time.Second
)

// ordered runs an ordered job (one queued with an ordering key, see
// job.Defaults.OrderBy) only when every job queued before it with the same
// key has ended, and moves the key on when it ends: completed, or failed for
// good (a job that will run again keeps its place, so a later one never
// overtakes it). A job without a sequence (queued by another program, or
// before its type was ordered) runs unordered.
//
// It is the outermost middleware: a job that waits its turn was not run, so
// it is not counted, logged, escalated or reported.
func (p *Policy) ordered(next Handler) Handler {
	return func(ctx context.Context, a *Attempt) error {
		if p.order == nil || a.orderKey == "" || a.Def.Work == nil {
			return next(ctx, a)
		}
		turn, err := p.order.OrderGate(ctx, a.Queue, a.Def.Type, a.orderKey, a.ID)
		if err != nil {
			// Without its turn known the job must not run: it might overtake
			// an earlier one. Redis is likely down; it asks again shortly.
			return p.waitTurn(fmt.Errorf("ordered by %s=%s: %w", a.Def.OrderBy, a.orderKey, err), orderWaitMax)
		}
		if !turn.Ordered {
			return next(ctx, a)
		}
		if turn.Ahead > 0 {
			wait := min(time.Duration(turn.Ahead)*orderStep, orderWaitMax)
			// Not a run, so the policy logs nothing of it; this line says why
			// a job seems not to move.
			a.Log().Debug("job waits its turn", "order_key", a.orderKey, "ahead", turn.Ahead, "retry_in", wait.String())
			return p.waitTurn(fmt.Errorf("waiting for %d earlier job(s) with %s=%s", turn.Ahead, a.Def.OrderBy, a.orderKey), wait)
		}
		err = next(ctx, a)
		if v := verdictOf(err); err == nil || (v != nil && v.final) {
			// Not the job's context: a job ending as the worker stops still
			// lets the next one go.
			if derr := p.order.OrderDone(context.WithoutCancel(ctx), a.Queue, a.Def.Type, a.orderKey, turn.Seq); derr != nil {
				// The next job's gate skips a predecessor that has ended, so
				// the key is not blocked for ever; it moves on at that check.
				a.Log().Warn("could not move the job's ordering key on", "order_key", a.orderKey, "error", derr.Error())
			}
		}
		return err
	}
}

// waitTurn is the verdict on an ordered job that may not run yet: to be
// tried again after wait, no attempt used, never final (a job waits as long
// as the jobs before it take).
func (p *Policy) waitTurn(err error, wait time.Duration) *verdict {
	err = errand.ThrottledError(err, wait)
	return &verdict{err: err, class: errand.Throttled, wait: wait, at: p.now(), text: p.redact.Text(err.Error())}
}
