// Package limit is the service gate: before each outbound call of a service
// (smtp, slack, tidio, …) a job asks the gate, shared by every worker
// through Redis, whether the call may go — the service's [limits] bucket has
// a token and the service is not held after throttling us.
package limit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/config"

	"github.com/errandhq/errand/internal/rdb/sharedlimit"
	"github.com/redis/go-redis/v9"
)

// Gate holds every service's limit; one per worker, built at start.
//
// Asking Redis before every call would cost a job a round trip (measured: a
// drain of no-op jobs each asking the gate ran at 0.58× the plain drain), so
// the worker keeps what it knows of each service: holds are told to every
// worker as they are recorded (sharedlimit.LimitHoldChannel), and read from Redis
// at least every holdRecheck in case one was missed; a service with a fast
// rate is taken from a few tokens at a time (see bucket.ahead).
type Gate struct {
	r       *sharedlimit.Store
	buckets map[string]bucket
	known   map[string]*known // per config.Services; fixed after New
	// watching is set while the worker hears every hold recorded.
	watching atomic.Bool
	watch    sync.Once // started at the first call, once the worker runs
	ctx      context.Context
	stop     context.CancelFunc
}

type bucket struct {
	per   time.Duration
	burst int
}

// A worker takes up to ahead tokens at once (never more than half of the
// bucket), and spends them within aheadFor or not at all: so a token is
// spent at most aheadFor after the shared bucket gave it, and the calls of
// any span D exceed rate×D + burst by at most rate × aheadFor — less than
// one call for every real service limit (10 a minute, 5 a second: 0.003 and
// 0.1), 20 at the highest rate errand takes (1000 a second). Holds are read
// from Redis at least every holdRecheck.
const (
	ahead       = 64
	aheadFor    = 20 * time.Millisecond
	holdRecheck = time.Second
)

// known is what this worker knows of a service.
type known struct {
	mu      sync.Mutex
	held    time.Time // held until then
	tokens  int       // taken ahead from the shared bucket, good until until
	until   time.Time
	checked time.Time // when Redis last said whether it is held
}

// New returns the gate for limits (config.Limits, already validated) over c,
// hearing every worker's holds until Close. Without a Redis client (c nil) it
// is nil, and a nil Gate lets every call go: tests that build one handler
// without Redis.
func New(c redis.UniversalClient, limits map[string]config.Limit) (*Gate, error) {
	if c == nil {
		return nil, nil
	}
	g := &Gate{r: sharedlimit.New(c), buckets: map[string]bucket{}, known: map[string]*known{}}
	for name, l := range limits {
		per, burst, err := l.Bucket()
		if err != nil {
			return nil, fmt.Errorf("limits.%s.rate: %w", name, err)
		}
		if per > 0 {
			g.buckets[name] = bucket{per: per, burst: burst}
		}
	}
	for _, s := range config.Services {
		g.known[s] = &known{}
	}
	g.ctx, g.stop = context.WithCancel(context.Background())
	return g, nil
}

// startWatch hears every worker's holds until Close. It starts with the
// first call rather than in New: go-redis must not open the subscription's
// connection while the worker is still copying the client's options.
func (g *Gate) startWatch() {
	g.watch.Do(func() {
		go func() {
			// Without the watch every call asks Redis: slower, never wrong.
			_ = g.r.WatchLimitHolds(g.ctx, func() { g.watching.Store(true) }, func(service string, until time.Time) {
				if k := g.known[service]; k != nil {
					k.hold(until)
				}
			})
			g.watching.Store(false)
		}()
	})
}

// Close stops hearing holds; the gate asks Redis before every call after it.
func (g *Gate) Close() {
	if g != nil {
		g.watch.Do(func() {}) // never start after Close
		g.stop()
	}
}

// hold records that the service is held until until, and drops the tokens
// taken ahead: they must not be spent during the hold.
func (k *known) hold(until time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if until.After(k.held) {
		k.held = until
	}
	k.tokens = 0
}

// local answers Wait from what the worker knows: go (true, nil), held (true,
// the refusal), or ask Redis (false).
func (g *Gate) local(service string, b bucket, k *known) (bool, error) {
	now := time.Now()
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.held.After(now) {
		return true, errand.ThrottledError(fmt.Errorf("%w: %s held after throttling", ErrRefused, service), k.held.Sub(now))
	}
	if !g.watching.Load() || now.Sub(k.checked) >= holdRecheck {
		return false, nil
	}
	if b.per == 0 {
		return true, nil
	}
	if k.tokens > 0 && now.Before(k.until) {
		k.tokens--
		return true, nil
	}
	return false, nil
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
	g.startWatch()
	b := g.buckets[service]
	run, _ := ctx.Value(runKey{}).(*jobRun)
	k := g.known[service]
	if k != nil {
		if done, err := g.local(service, b, k); done {
			if err == nil && run != nil {
				run.called.Store(true)
			}
			return err
		}
	}
	var within time.Duration
	if run != nil && run.called.Load() {
		within = maxInPlace
		if d, ok := ctx.Deadline(); ok {
			within = max(0, min(within, time.Until(d)-time.Second))
		}
	}
	asked := time.Now()
	n := 1
	if k != nil && within == 0 {
		n = ahead
	}
	wait, held, promised, taken, err := g.r.LimitTakeN(ctx, service, b.per, b.burst, n, within)
	if err != nil {
		return err
	}
	if k != nil {
		k.mu.Lock()
		k.checked = asked
		if held {
			k.held = asked.Add(wait)
		} else if taken > 1 {
			// Several workers' runners may have asked at once: each batch
			// adds to the tokens ahead.
			if !asked.Before(k.until) {
				k.tokens = 0
			}
			k.tokens += taken - 1
			k.until = asked.Add(aheadFor)
		}
		k.mu.Unlock()
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
	if k := g.known[service]; k != nil {
		// Even unrecorded, this worker holds the service itself.
		k.hold(time.Now().Add(wait))
	}
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
