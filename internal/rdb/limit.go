package rdb

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

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

// limitTakeScript takes a token from service's bucket unless the service is
// held.
//
// KEYS[1] -> errand:{limit:<service>}:bucket (LimitKey)
// ARGV[1] -> ms per token (rate duration / rate count), a float; 0 = no bucket,
// only the hold is checked
// ARGV[2] -> burst, the bucket's size
// ARGV[3] -> ms the caller would wait in place for a token: when the bucket is
// empty but the token after those already promised comes within it, that
// token is promised to the caller (the bucket goes below zero, so later
// callers wait behind it); 0 never promises
// ARGV[4] -> how many tokens the caller would take at once (at least 1); it
// gets up to half of what the bucket holds, at least 1
//
// Returns {wait ms, held, promised, taken}: wait 0 when tokens were taken
// (taken of them); else how long until one will be there (held 0) or the
// hold ends (held 1), and promised 1 when the caller has that token and calls
// after wait.
var limitTakeScript = newScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local hold = tonumber(redis.call('HGET', KEYS[1], 'hold') or '0')
if hold > now then return {hold - now, 1, 0, 0} end
local per = tonumber(ARGV[1])
if per <= 0 then return {0, 0, 0, 1} end
local burst = tonumber(ARGV[2])
local tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens') or ARGV[2])
local at = tonumber(redis.call('HGET', KEYS[1], 'at') or now)
if now > at then tokens = math.min(burst, tokens + (now - at) / per) end
local wait, promised, taken = 0, 0, 0
if tokens >= 1 then
	-- Never more than half of what is left: a worker's tokens taken ahead
	-- must not starve the others when the bucket runs low.
	taken = math.min(tonumber(ARGV[4]), math.max(1, math.floor(tokens / 2)))
	tokens = tokens - taken
else
	wait = math.ceil((1 - tokens) * per)
	if wait <= tonumber(ARGV[3]) then
		tokens = tokens - 1
		promised = 1
	end
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
-- The hash outlives the time the bucket takes to fill up again.
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * per) + 60000)
return {wait, 0, promised, taken}
`)

// limitHoldScript holds service until now+wait, or keeps a later hold.
//
// KEYS[1] -> errand:{limit:<service>}:bucket (LimitKey)
// ARGV[1] -> wait, ms
// ARGV[2] -> errand:limit:hold (LimitHoldChannel), where the hold is told
// ARGV[3] -> the service
//
// Returns the hold's end, Redis ms.
var limitHoldScript = newScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local hold = tonumber(redis.call('HGET', KEYS[1], 'hold') or '0')
local want = now + tonumber(ARGV[1])
if want > hold then
	hold = want
	redis.call('HSET', KEYS[1], 'hold', hold)
end
if redis.call('PTTL', KEYS[1]) < hold - now + 60000 then
	redis.call('PEXPIRE', KEYS[1], hold - now + 60000)
end
redis.call('PUBLISH', ARGV[2], ARGV[3] .. ' ' .. (hold - now))
return hold
`)

// LimitTake takes one call of service from its shared bucket, which holds
// burst calls and refills at one per per. per 0 checks only the hold. It
// returns 0 when the call may go now, else how long to wait and whether the
// wait is a hold (the service throttled us) rather than an empty bucket.
func (r *RDB) LimitTake(ctx context.Context, service string, per time.Duration, burst int) (wait time.Duration, held bool, err error) {
	wait, held, _, _, err = r.LimitTakeN(ctx, service, per, burst, 1, 0)
	return wait, held, err
}

// LimitPromise is LimitTake for a caller that would rather wait in place up
// to within than give up: when the bucket is empty but the next token free
// comes within that time, it is promised to the caller (promised true), who
// calls after wait without asking again; later callers wait behind it. A
// held service promises nothing.
func (r *RDB) LimitPromise(ctx context.Context, service string, per time.Duration, burst int, within time.Duration) (wait time.Duration, held, promised bool, err error) {
	wait, held, promised, _, err = r.LimitTakeN(ctx, service, per, burst, 1, within)
	return wait, held, promised, err
}

// LimitTakeN is LimitPromise for a caller that would take up to n tokens at
// once when the bucket holds them (taken says how many it got), to spend
// them without asking Redis again.
func (r *RDB) LimitTakeN(ctx context.Context, service string, per time.Duration, burst, n int, within time.Duration) (wait time.Duration, held, promised bool, taken int, err error) {
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
func (r *RDB) WatchLimitHolds(ctx context.Context, subscribed func(), held func(service string, until time.Time)) error {
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
func (r *RDB) LimitHold(ctx context.Context, service string, wait time.Duration) (time.Time, error) {
	call := &evalCall{script: limitHoldScript, keys: []string{LimitKey(service)}, args: []any{wait.Milliseconds(), LimitHoldChannel, service}}
	r.runPipelined(ctx, []*evalCall{call}, countHold(ctx, service))
	ms, err := call.cmd.Int64()
	if err != nil {
		return time.Time{}, fmt.Errorf("hold %s: %w", service, err)
	}
	return time.UnixMilli(ms), nil
}

// LimitHeldUntil is when service's hold ends; zero when it was never held or
// its hold record is gone. The caller compares it with the time.
func (r *RDB) LimitHeldUntil(ctx context.Context, service string) (time.Time, error) {
	ms, err := r.c.HGet(ctx, LimitKey(service), "hold").Int64()
	if errors.Is(err, redis.Nil) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("hold of %s: %w", service, err)
	}
	return time.UnixMilli(ms), nil
}
