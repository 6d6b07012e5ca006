// Package limit is the service gate: before each outbound call of a service
// (smtp, slack, tidio, …) a job asks the gate, shared by every worker
// through Redis, whether the call may go — the service's [limits] bucket has
// a token and the service is not held after throttling us.
package limit

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/rdb"
	"github.com/redis/go-redis/v9"
)

// Gate holds every service's limit; one per worker, built at start.
type Gate struct {
	r       *rdb.RDB
	buckets map[string]bucket
}

type bucket struct {
	per   time.Duration
	burst int
}

// New returns the gate for limits (config.Limits, already validated) over c.
// Without a Redis client (c nil) it is nil, and a nil Gate lets every call
// go: tests that build one handler without Redis.
func New(c redis.UniversalClient, limits map[string]config.Limit) (*Gate, error) {
	if c == nil {
		return nil, nil
	}
	g := &Gate{r: rdb.New(c), buckets: map[string]bucket{}}
	for name, l := range limits {
		per, burst, err := l.Bucket()
		if err != nil {
			return nil, fmt.Errorf("limits.%s.rate: %w", name, err)
		}
		if per > 0 {
			g.buckets[name] = bucket{per, burst}
		}
	}
	return g, nil
}

// maxInPlace is the longest a job's later call waits in place for its
// token.
const maxInPlace = 30 * time.Second

type runKey struct{}

// jobRun is one run of a job, as the gate knows it.
type jobRun struct{ called atomic.Bool }

// InJob returns ctx for one run of a job: once the run has made a call
// through the gate, its later calls wait in place for their turn rather
// than give up half-way (see Wait).
func InJob(ctx context.Context) context.Context {
	return context.WithValue(ctx, runKey{}, &jobRun{})
}

// ErrRefused is wrapped in the error Wait returns when the gate refuses.
var ErrRefused = errors.New("service gate")

// Wait returns nil when a call of service may go now, else an
// errand.ThrottledError with how long to wait: the job is rescheduled
// without using an attempt. A service with no rate is still held after
// it throttled us. A job's first call never sleeps; a later call of the same
// run (ctx from InJob) waits in place, up to maxInPlace and within the job's
// deadline, for a token promised to it: else a job that needs two calls
// (look up, then create) under a burst of 1 would be refused half-way every
// time it ran, for ever.
func (g *Gate) Wait(ctx context.Context, service string) error {
	if g == nil {
		return nil
	}
	b := g.buckets[service]
	run, _ := ctx.Value(runKey{}).(*jobRun)
	var within time.Duration
	if run != nil && run.called.Load() {
		within = maxInPlace
		if d, ok := ctx.Deadline(); ok {
			within = max(0, min(within, time.Until(d)-time.Second))
		}
	}
	wait, held, promised, err := g.r.LimitPromise(ctx, service, b.per, b.burst, within)
	if err != nil {
		return err
	}
	if promised {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
			wait = 0
		case <-ctx.Done():
			return fmt.Errorf("%s: waiting for its turn: %w", service, ctx.Err())
		}
	}
	if wait <= 0 && run != nil {
		run.called.Store(true)
	}
	switch {
	case wait <= 0:
		return nil
	case held:
		return errand.ThrottledError(fmt.Errorf("%w: %s held after throttling", ErrRefused, service), wait)
	default:
		return errand.ThrottledError(fmt.Errorf("%w: %s over its rate %s", ErrRefused, service, b), wait)
	}
}

func (b bucket) String() string { return fmt.Sprintf("1/%s burst %d", b.per, b.burst) }

// Throttled holds service for every worker until wait from now, when a call
// came back throttled (errand.Throttled with that wait). It keeps a later
// hold already set.
func (g *Gate) Throttled(ctx context.Context, service string, wait time.Duration) error {
	if g == nil || wait <= 0 {
		return nil
	}
	_, err := g.r.LimitHold(ctx, service, wait)
	return err
}

// After is what a job calls with its service call's error: a throttled
// answer holds the service for its wait. It returns err unchanged.
func (g *Gate) After(ctx context.Context, service string, err error) error {
	var ce *errand.ClassError
	if errors.As(err, &ce) && ce.Class == errand.Throttled && !errors.Is(err, ErrRefused) {
		// A hold that cannot be recorded only means other workers may call
		// once more and be throttled themselves; the job's own error stands.
		_ = g.Throttled(ctx, service, ce.Wait)
	}
	return err
}

// HeldUntil is when service's hold ends, zero when it is not held.
func (g *Gate) HeldUntil(ctx context.Context, service string) (time.Time, error) {
	if g == nil {
		return time.Time{}, nil
	}
	until, err := g.r.LimitHeldUntil(ctx, service)
	if err != nil || !until.After(time.Now()) {
		return time.Time{}, err
	}
	return until, nil
}
