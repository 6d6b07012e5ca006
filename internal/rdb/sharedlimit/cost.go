package sharedlimit

import (
	"context"
	_ "embed"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
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

//go:embed lua/cost_take.lua
var costTakeLua string

// costTakeScript sets aside the expected cost of a call of kind op when the
// bucket covers it. Its KEYS and ARGV are listed in lua/cost_take.lua.
var costTakeScript = redis.NewScript(costTakeLua)

//go:embed lua/cost_spent.lua
var costSpentLua string

// costSpentScript gives a call's reservation back and records what the service
// said of its bucket in the answer. Its KEYS and ARGV are listed in
// lua/cost_spent.lua.
var costSpentScript = redis.NewScript(costSpentLua)

// CostTake sets aside, in service's shared cost bucket, the expected cost of
// a call of kind op. It returns wait 0 and the reservation to pass to
// CostSpent when the bucket covers the call (or nothing is known of it yet
// and no other call is finding out), else how long until it will.
func (r *Store) CostTake(ctx context.Context, service, op string) (wait time.Duration, reservation int64, err error) {
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
func (r *Store) CostSpent(ctx context.Context, service, op string, reservation int64, f *CostFigures) (float64, error) {
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
