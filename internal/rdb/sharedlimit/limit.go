package sharedlimit

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Store reads and writes the services' limits in Redis.
type Store struct{ c redis.UniversalClient }

// New returns the limits of the errand whose Redis c is.
func New(c redis.UniversalClient) *Store { return &Store{c: c} }

// Service limits: every worker of one errand shares, per outbound service
// (smtp, slack, tidio, …), one hash LimitKey with fields
//
//	tokens  the bucket's tokens left at instant at (a float)
//	at      when tokens was last worked out, Redis ms
//	hold    until when (Redis ms) the service told us to stop calling it
//
// Time is Redis's own clock (TIME), so workers on hosts whose clocks
// disagree still share one bucket. asynq has nothing like it.

// LimitHoldChannel carries every hold as it is recorded, "<service> <ms it
// lasts from now>" (a length, so a worker whose clock differs from Redis's
// still holds for the right time), so each worker's gate knows of it at once
// without asking Redis before every call.
const LimitHoldChannel = "errand:limit:hold"

// LimitKey is service's limit hash. The hash tag is the service, so each
// service's hash may live on its own Redis Cluster node.
func LimitKey(service string) string { return "errand:{limit:" + service + "}:bucket" }

//go:embed lua/limit_take.lua
var limitTakeLua string

// limitTakeScript takes a token from service's bucket unless the service is
// held. Its KEYS and ARGV are listed in lua/limit_take.lua.
var limitTakeScript = redis.NewScript(limitTakeLua)

//go:embed lua/limit_hold.lua
var limitHoldLua string

// limitHoldScript holds service until now+wait, or keeps a later hold. Its KEYS
// and ARGV are listed in lua/limit_hold.lua.
var limitHoldScript = redis.NewScript(limitHoldLua)

// LimitTake takes one call of service from its shared bucket, which holds
// burst calls and refills at one per per. per 0 checks only the hold. It
// returns 0 when the call may go now, else how long to wait and whether the
// wait is a hold (the service throttled us) rather than an empty bucket.
func (r *Store) LimitTake(ctx context.Context, service string, per time.Duration, burst int) (wait time.Duration, held bool, err error) {
	wait, held, _, _, err = r.LimitTakeN(ctx, service, per, burst, 1, 0)
	return wait, held, err
}

// LimitPromise is LimitTake for a caller that would rather wait in place up
// to within than give up: when the bucket is empty but the next token free
// comes within that time, it is promised to the caller (promised true), who
// calls after wait without asking again; later callers wait behind it. A
// held service promises nothing.
func (r *Store) LimitPromise(ctx context.Context, service string, per time.Duration, burst int, within time.Duration) (wait time.Duration, held, promised bool, err error) {
	wait, held, promised, _, err = r.LimitTakeN(ctx, service, per, burst, 1, within)
	return wait, held, promised, err
}

// LimitTakeN is LimitPromise for a caller that would take up to n tokens at
// once when the bucket holds them (taken says how many it got), to spend
// them without asking Redis again.
func (r *Store) LimitTakeN(ctx context.Context, service string, per time.Duration, burst, n int, within time.Duration) (wait time.Duration, held, promised bool, taken int, err error) {
	perMs := float64(per) / float64(time.Millisecond)
	res, err := limitTakeScript.Run(ctx, r.c, []string{LimitKey(service)}, strconv.FormatFloat(perMs, 'f', -1, 64), burst, within.Milliseconds(), max(n, 1)).Int64Slice()
	if err != nil {
		return 0, false, false, 0, fmt.Errorf("limit %s: %w", service, err)
	}
	if len(res) != 4 {
		return 0, false, false, 0, fmt.Errorf("limit %s: unexpected answer %v", service, res)
	}
	return time.Duration(res[0]) * time.Millisecond, res[1] == 1, res[2] == 1, int(res[3]), nil
}

// WatchLimitHolds calls held with every hold any worker records from now on,
// until ctx ends; subscribed is called once Redis has confirmed the
// subscription. go-redis subscribes again by itself after a lost
// connection; a hold told meanwhile is missed (the gate reads holds from
// Redis now and then for that).
func (r *Store) WatchLimitHolds(ctx context.Context, subscribed func(), held func(service string, until time.Time)) error {
	ps := r.c.Subscribe(ctx, LimitHoldChannel)
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		return fmt.Errorf("watch holds: %w", err)
	}
	subscribed()
	ch := ps.Channel(redis.WithChannelHealthCheckInterval(30 * time.Second))
	for {
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-ch:
			if !ok {
				return nil
			}
			service, ms, _ := strings.Cut(m.Payload, " ")
			if wait, err := strconv.ParseInt(ms, 10, 64); err == nil {
				held(service, time.Now().Add(time.Duration(wait)*time.Millisecond))
			}
		}
	}
}

// LimitHold holds service for wait from now (Redis's clock), keeping a later
// hold if one is set, and returns when the hold ends.
func (r *Store) LimitHold(ctx context.Context, service string, wait time.Duration) (time.Time, error) {
	keys, args := []string{LimitKey(service)}, []any{wait.Milliseconds(), LimitHoldChannel, service}
	var call *redis.Cmd
	_, _ = r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		countHold(ctx, p, service)
		call = limitHoldScript.EvalSha(ctx, p, keys, args...)
		return nil
	})
	if redis.HasErrorPrefix(call.Err(), "NOSCRIPT") {
		// A restarted or failed-over Redis: only the script is sent again.
		call = limitHoldScript.Eval(ctx, r.c, keys, args...)
	}
	ms, err := call.Int64()
	if err != nil {
		return time.Time{}, fmt.Errorf("hold %s: %w", service, err)
	}
	return time.UnixMilli(ms), nil
}

// LimitHeldUntil is when service's hold ends; zero when it was never held or
// its hold record is gone. The caller compares it with the time.
func (r *Store) LimitHeldUntil(ctx context.Context, service string) (time.Time, error) {
	ms, err := r.c.HGet(ctx, LimitKey(service), "hold").Int64()
	if errors.Is(err, redis.Nil) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("hold of %s: %w", service, err)
	}
	return time.UnixMilli(ms), nil
}
