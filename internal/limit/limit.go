// Package limit is the service gate: before each outbound call of a service
// (smtp, slack, tidio, …) a job asks the gate, shared by every worker
// through Redis, whether the call may go — the service's [limits] bucket has
// a token and the service is not held after throttling us.
package limit

import (
	"context"
	"errors"
	"fmt"
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

// ErrRefused is wrapped in the error Wait returns when the gate refuses.
var ErrRefused = errors.New("service gate")

// Wait returns nil when a call of service may go now, else an
// errand.ThrottledError with how long to wait: the job is rescheduled
// without using an attempt. A service with no rate is still held after
// it throttled us. It does not sleep.
func (g *Gate) Wait(ctx context.Context, service string) error {
	if g == nil {
		return nil
	}
	b := g.buckets[service]
	wait, held, err := g.r.LimitTake(ctx, service, b.per, b.burst)
	if err != nil {
		return err
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
