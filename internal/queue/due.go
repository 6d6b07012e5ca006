package queue

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/errandhq/errand/internal/rdb"
)

// A delayed job, or one waiting to retry, sits in its queue's scheduled or
// retry set (asynq's layout) scored by its exact due instant: Unix seconds
// with the milliseconds as a fraction, rounded up (rdb.DueScore). asynq's own
// scan moves jobs whose score is at most the current whole second, so on its
// own it would start a job up to its check interval late, but never early.
// The due forwarder moves each job at its own instant instead.

// forwardLimit is how many jobs one step looks at per set; a step that moved
// as many runs again at once.
const forwardLimit = 200

// dueForwarder hands delayed jobs and retries to the workers at their exact
// due instant. It sleeps until the earliest due instant it knows of; a job
// queued meanwhile with an earlier one wakes it (due, with the job's
// instant), and it looks on its own at least every maxSleep, for jobs put in
// the sets by others (asynq's recoverer). Several workers may run one each:
// the script moves a job once.
type dueForwarder struct {
	rdb      *rdb.RDB
	queues   []string
	maxSleep time.Duration
	log      *slog.Logger

	mu     sync.Mutex
	target time.Time     // when the forwarder runs next
	wake   chan struct{} // target moved earlier
}

func newDueForwarder(r *rdb.RDB, queues []string, maxSleep time.Duration, log *slog.Logger) *dueForwarder {
	return &dueForwarder{rdb: r, queues: queues, maxSleep: maxSleep, log: log, wake: make(chan struct{}, 1)}
}

// due tells the forwarder a job is due at at; it wakes earlier when that is
// before its next run.
func (f *dueForwarder) due(at time.Time) {
	f.mu.Lock()
	earlier := at.Before(f.target)
	if earlier {
		f.target = at
	}
	f.mu.Unlock()
	if earlier {
		select {
		case f.wake <- struct{}{}:
		default:
		}
	}
}

func (f *dueForwarder) run(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			next := f.step(ctx)
			f.mu.Lock()
			f.target = next
			f.mu.Unlock()
		case <-f.wake:
		}
		f.mu.Lock()
		wait := time.Until(f.target)
		f.mu.Unlock()
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(max(wait, 0))
	}
}

// step forwards what is due and returns when to run next.
func (f *dueForwarder) step(ctx context.Context) time.Time {
	for {
		now := time.Now()
		moved, next, err := f.rdb.ForwardDue(ctx, f.queues, now, forwardLimit)
		if err != nil {
			if ctx.Err() == nil {
				f.log.Debug("due forwarder: Redis failed; trying again in a second", "error", err.Error())
			}
			return now.Add(min(time.Second, f.maxSleep))
		}
		if moved >= forwardLimit {
			continue // maybe more due already
		}
		if at := now.Add(f.maxSleep); next.IsZero() || at.Before(next) {
			next = at
		}
		return next
	}
}
