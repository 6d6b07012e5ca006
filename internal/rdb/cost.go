package rdb

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// A service with a cost-based limit (Shopify's GraphQL Admin API: a bucket
// of points, each query needing its requested cost available before it runs,
// refunded down to its actual cost after) has, beside its LimitKey, one hash
// CostKey that every worker shares, with fields
//
//	max, rate     the bucket's size and points restored a second, as the
//	              service last said
//	avail, at     the points errand reckons are in the bucket at instant at
//	              (Redis ms), with what its calls in flight set aside taken out
//	cost:<op>     the requested cost of the last call of kind op
//	costmax       the highest requested cost seen: the guess for a kind not
//	              seen yet
//	seq, r:<n>    reservations of calls in flight: "<cost>:<expiry ms>"
//	probe         while nothing is known of the bucket, the expiry (ms) of
//	              the one call let through to learn it
//
// A call goes when avail covers its expected cost, which it sets aside; its
// answer gives the reservation back and sets avail to what the service says
// it has, less what other calls in flight set aside. So workers wait before
// the service would throttle them, not after.

// CostKey is service's cost bucket hash, in the slot of its LimitKey.
func CostKey(service string) string { return "errand:{limit:" + service + "}:cost" }

// costReservationTTL bounds how long a call's reservation is counted: a
// worker lost mid-call never gives it back.
const costReservationTTL = time.Minute

// Before the bucket is known (the first call, or after a long idle time) one
// call goes to learn it, and the others wait costProbeWait and ask again; a
// probe whose answer never comes stops counting after costProbeTTL.
const (
	costProbeWait = 200 * time.Millisecond
	costProbeTTL  = 10 * time.Second
)

// costTakeScript sets aside the expected cost of a call of kind op when the
// bucket covers it.
//
// KEYS[1] -> errand:{limit:<service>}:cost (CostKey)
// ARGV[1] -> op, the kind of call
// ARGV[2] -> how long a reservation is counted, ms
// ARGV[3] -> how long a probe is counted, ms
// ARGV[4] -> how long calls wait for a probe's answer, or for the answers
// of calls in flight, ms
//
// Returns {wait ms, reservation}: wait 0 and the reservation's number (0
// for the probe, when nothing is known of the bucket yet: it sets aside
// nothing), else how long until the bucket covers the call.
var costTakeScript = newScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local max = tonumber(redis.call('HGET', KEYS[1], 'max'))
if not max then
	local probe = tonumber(redis.call('HGET', KEYS[1], 'probe') or '0')
	if probe > now then return {tonumber(ARGV[4]), 0} end
	redis.call('HSET', KEYS[1], 'probe', now + tonumber(ARGV[3]))
	redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) + 60000)
	return {0, 0}
end
local rate = tonumber(redis.call('HGET', KEYS[1], 'rate') or '0')
local cost = tonumber(redis.call('HGET', KEYS[1], 'cost:' .. ARGV[1]) or redis.call('HGET', KEYS[1], 'costmax') or '0')
-- A call costing more than the bucket holds is refused by the service
-- itself, for good; waiting would not help.
cost = math.min(cost, max)
local avail = tonumber(redis.call('HGET', KEYS[1], 'avail') or max)
local at = tonumber(redis.call('HGET', KEYS[1], 'at') or now)
if now > at then avail = math.min(max, avail + (now - at) * rate / 1000) end
if avail < cost then
	redis.call('HSET', KEYS[1], 'avail', tostring(avail), 'at', now)
	local wait = 1000
	if rate > 0 then wait = math.ceil((cost - avail) * 1000 / rate) end
	-- Calls in flight give back most of what they set aside when answered
	-- (a query's actual cost is often far below its requested one): ask
	-- again soon rather than wait for the bucket to refill.
	local all = redis.call('HGETALL', KEYS[1])
	for i = 1, #all, 2 do
		if string.sub(all[i], 1, 2) == 'r:' and tonumber(string.match(all[i + 1], ':(%d+)$')) > now then
			return {math.min(wait, tonumber(ARGV[4])), 0}
		end
	end
	return {wait, 0}
end
local id = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('HSET', KEYS[1], 'avail', tostring(avail - cost), 'at', now, 'r:' .. id, tostring(cost) .. ':' .. (now + tonumber(ARGV[2])))
return {0, id}
`)

// costSpentScript gives a call's reservation back and records what the
// service said of its bucket in the answer.
//
// KEYS[1] -> errand:{limit:<service>}:cost (CostKey)
// ARGV[1] -> op, the kind of call
// ARGV[2] -> the call's reservation, 0 for none
// ARGV[3] -> 1 when the answer had the figures below, else 0
// ARGV[4] -> the call's requested cost
// ARGV[5] -> the bucket's size
// ARGV[6] -> what the service says is in it now
// ARGV[7] -> points restored a second
//
// Returns avail after the call, as a string.
var costSpentScript = newScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[2] ~= '0' then
	redis.call('HDEL', KEYS[1], 'r:' .. ARGV[2])
end
redis.call('HDEL', KEYS[1], 'probe')
if ARGV[3] ~= '1' then
	-- No answer: whether the service ran the call is unknown, so what was set
	-- aside stays spent; the bucket restores it in time.
	return redis.call('HGET', KEYS[1], 'avail') or ''
end
local max, rate = tonumber(ARGV[5]), tonumber(ARGV[7])
-- What other calls in flight set aside: the service may not have charged it
-- when it answered this one.
local inflight = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
	if string.sub(all[i], 1, 2) == 'r:' then
		local c, exp = string.match(all[i + 1], '^([^:]+):(%d+)$')
		if tonumber(exp) < now then
			redis.call('HDEL', KEYS[1], all[i])
		else
			inflight = inflight + tonumber(c)
		end
	end
end
-- Shopify's word, less what the calls still in flight set aside (it may not
-- have charged them yet): the bucket as it will be once they have run. Its
-- word is trusted over errand's reckoning, which only guesses the refunds;
-- an answer read after a later one overstates by what was charged between,
-- a call or two's actual cost.
local avail = tonumber(ARGV[6]) - inflight
local requested = tonumber(ARGV[4])
local costmax = math.max(requested, tonumber(redis.call('HGET', KEYS[1], 'costmax') or '0'))
redis.call('HSET', KEYS[1], 'max', ARGV[5], 'rate', ARGV[7], 'avail', tostring(avail), 'at', now,
	'cost:' .. ARGV[1], ARGV[4], 'costmax', tostring(costmax))
-- The hash outlives the time the bucket takes to fill up, and any call in flight.
local ttl = 120000
if rate > 0 then ttl = ttl + math.ceil(max * 1000 / rate) end
redis.call('PEXPIRE', KEYS[1], ttl)
return tostring(avail)
`)

// CostTake sets aside, in service's shared cost bucket, the expected cost of
// a call of kind op. It returns wait 0 and the reservation to pass to
// CostSpent when the bucket covers the call (or nothing is known of it yet
// and no other call is finding out), else how long until it will.
func (r *RDB) CostTake(ctx context.Context, service, op string) (wait time.Duration, reservation int64, err error) {
	res, err := costTakeScript.Run(ctx, r.c, []string{CostKey(service)}, op,
		costReservationTTL.Milliseconds(), costProbeTTL.Milliseconds(), costProbeWait.Milliseconds()).Int64Slice()
	if err != nil {
		return 0, 0, fmt.Errorf("cost bucket of %s: %w", service, err)
	}
	if len(res) != 2 {
		return 0, 0, fmt.Errorf("cost bucket of %s: unexpected answer %v", service, res)
	}
	return time.Duration(res[0]) * time.Millisecond, res[1], nil
}

// CostFigures are what a service said of its cost bucket in an answer.
type CostFigures struct {
	Requested, Maximum, Available, RestoreRate float64
}

// CostSpent gives reservation back to service's cost bucket and records
// what the answer to the call of kind op said of the bucket (f nil: the call
// got no answer). It returns the points errand now reckons are available.
func (r *RDB) CostSpent(ctx context.Context, service, op string, reservation int64, f *CostFigures) (float64, error) {
	args := []any{op, reservation, 0, 0, 0, 0, 0}
	if f != nil {
		args = []any{op, reservation, 1, num(f.Requested), num(f.Maximum), num(f.Available), num(f.RestoreRate)}
	}
	s, err := costSpentScript.Run(ctx, r.c, []string{CostKey(service)}, args...).Text()
	if err != nil {
		return 0, fmt.Errorf("cost bucket of %s: %w", service, err)
	}
	avail, _ := strconv.ParseFloat(s, 64)
	return avail, nil
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
