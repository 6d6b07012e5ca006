// Package lifetime ends a worker on its own, for workers started by cron or
// recycled by a container platform (Laravel's queue:work --max-jobs,
// --max-time, --stop-when-empty; Magento's maxMessages): after it has taken a
// number of jobs, after a time, or once its queues have nothing due. It only
// decides when; the worker then stops as on SIGTERM (internal/queue): it
// takes no new job, lets the running ones finish within
// worker.shutdown_timeout, and puts back the rest.
package lifetime

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/errandhq/errand/internal/rdb"
	"github.com/redis/go-redis/v9"
)

// Limits are the worker's flags; a zero field is no limit.
type Limits struct {
	MaxJobs       int           // --max-jobs: jobs taken
	MaxTime       time.Duration // --max-time: from when it starts taking jobs
	StopWhenEmpty bool          // --stop-when-empty
}

// Parse reads the flags' values as given ("" leaves a limit off), in one
// line naming the flag when one is wrong.
func Parse(maxJobs, maxTime string, stopWhenEmpty bool) (Limits, error) {
	l := Limits{StopWhenEmpty: stopWhenEmpty}
	if maxJobs != "" {
		n, err := strconv.Atoi(strings.TrimSpace(maxJobs))
		if err != nil || n < 1 {
			return Limits{}, fmt.Errorf("--max-jobs %q: want a whole number of jobs, at least 1", maxJobs)
		}
		l.MaxJobs = n
	}
	if maxTime != "" {
		d, err := time.ParseDuration(strings.TrimSpace(maxTime))
		if err != nil || d <= 0 {
			return Limits{}, fmt.Errorf("--max-time %q: want a duration above zero with its unit, such as 90s, 30m or 8h", maxTime)
		}
		l.MaxTime = d
	}
	return l, nil
}

// Any reports whether any limit is set.
func (l Limits) Any() bool { return l.MaxJobs > 0 || l.MaxTime > 0 || l.StopWhenEmpty }

// emptyCheck is how often --stop-when-empty looks at the queues: a round trip
// to Redis each time, only for a worker that was asked to stop when empty.
const emptyCheck = 500 * time.Millisecond

// Lifetime watches one worker's limits. It is the worker's queue.Budget: the
// fetcher asks it before each batch, so that a worker stopped by --max-jobs
// never leases a job it will not run.
type Lifetime struct {
	limits  Limits
	log     *slog.Logger
	started atomic.Int64 // jobs taken so far

	mu       sync.Mutex
	left     int           // jobs that may still be reserved (MaxJobs)
	reserved int           // reserved by fetches under way
	spent    chan struct{} // closed once MaxJobs are taken
}

// New returns the lifetime of a worker with limits l, logging to log.
func New(l Limits, log *slog.Logger) *Lifetime {
	return &Lifetime{limits: l, log: log, left: l.MaxJobs, spent: make(chan struct{})}
}

// Take implements queue.Budget: how many of n more jobs may be fetched.
func (lt *Lifetime) Take(n int) int {
	if lt.limits.MaxJobs == 0 {
		return n
	}
	lt.mu.Lock()
	defer lt.mu.Unlock()
	n = min(n, lt.left)
	lt.left -= n
	lt.reserved += n
	return n
}

// Taken implements queue.Budget: got of the reserved jobs were fetched; the
// rest may be taken by a later fetch.
func (lt *Lifetime) Taken(reserved, got int) {
	lt.started.Add(int64(got))
	if lt.limits.MaxJobs == 0 {
		return
	}
	lt.mu.Lock()
	defer lt.mu.Unlock()
	lt.left += reserved - got
	lt.reserved -= reserved
	if lt.left == 0 && lt.reserved == 0 {
		select {
		case <-lt.spent:
		default:
			close(lt.spent)
		}
	}
}

// Run waits until a limit is reached, then calls stop once and returns; or
// until ctx ends. idle reports whether the worker runs no job and its queues
// have nothing due (for StopWhenEmpty). The worker counts as empty when two
// checks in a row find it so with no job taken between them: a job that has
// just ended may still be writing its retry.
func (lt *Lifetime) Run(ctx context.Context, stop func(), idle func(context.Context) (bool, error)) {
	var maxTime, check <-chan time.Time
	if lt.limits.MaxTime > 0 {
		t := time.NewTimer(lt.limits.MaxTime)
		defer t.Stop()
		maxTime = t.C
	}
	if lt.limits.StopWhenEmpty {
		t := time.NewTicker(emptyCheck)
		defer t.Stop()
		check = t.C
	}
	spent := lt.spent
	if lt.limits.MaxJobs == 0 {
		spent = nil
	}
	emptyBefore, startedBefore, errLogged := false, int64(0), time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-maxTime:
			lt.stopping(stop, fmt.Sprintf("--max-time %s has passed", lt.limits.MaxTime))
			return
		case <-spent:
			lt.stopping(stop, fmt.Sprintf("--max-jobs %d jobs taken", lt.limits.MaxJobs))
			return
		case <-check:
			started := lt.started.Load()
			empty, err := idle(ctx)
			if err != nil && ctx.Err() == nil && time.Since(errLogged) > 10*time.Second {
				errLogged = time.Now()
				lt.log.Warn("--stop-when-empty: cannot tell whether the queues are empty", "error", err.Error())
			}
			if empty && err == nil && emptyBefore && started == startedBefore {
				lt.stopping(stop, "--stop-when-empty: its queues have nothing due")
				return
			}
			emptyBefore, startedBefore = empty && err == nil, started
		}
	}
}

func (lt *Lifetime) stopping(stop func(), reason string) {
	lt.log.Info("stopping: no new jobs; running jobs may finish", "reason", reason, "jobs_taken", lt.started.Load())
	stop()
}

// Idle is Run's idle for a worker on Redis c: running (queue.Worker.Running)
// says it runs no job, and its queues have nothing due (rdb.RDB.Due).
func Idle(running func() int, c redis.UniversalClient, queues []string) func(context.Context) (bool, error) {
	r := rdb.New(c)
	return func(ctx context.Context) (bool, error) {
		if running() > 0 {
			return false, nil
		}
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		n, err := r.Due(ctx, queues, time.Now())
		return n == 0 && err == nil, err
	}
}
