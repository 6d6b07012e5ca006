package rdb

import (
	"context"
	_ "embed"
	"fmt"
	"time"
)

// Per-key order: jobs of one type that share an ordering key (a payload
// field's value, e.g. a user id) run one at a time, in the order queued.
//
// Each (queue, type, key) has one hash, OrderKey, with fields
//
//	next     the last sequence number given out (HINCRBY at enqueue)
//	done     the highest sequence whose job has ended (completed or failed
//	         for good); only ever moves forward
//	s<seq>   the id of the job holding sequence seq, until done passes it
//
// and the job's own task hash holds its sequence in field order_seq. A job
// may run when its sequence is done+1; a job whose predecessor is gone from
// Redis without ending (deleted by hand) or ended without advancing done is
// skipped over, so no key is blocked for ever by a job that will never run.
// The hash expires OrderTTL after its last use, so idle keys leave Redis.

// OrderTTL is how long a key's order hash outlives its last use.
const OrderTTL = 7 * 24 * time.Hour

// OrderKey is the order hash of jobs of type typ with ordering key key in
// queue q. It carries q's hash tag, so it is in the slot of q's other keys and
// the enqueue script may touch it. It is errand's own key, not asynq's.
func OrderKey(q, typ, key string) string { return "errand:{" + q + "}:order:" + typ + ":" + key }

// orderTTLms is the hash's lifetime: OrderTTL, or for a delayed job OrderTTL
// past its due instant, so a job queued for next month keeps its place.
func orderTTLms(due time.Time, now time.Time) int64 {
	ttl := OrderTTL
	if d := due.Sub(now); !due.IsZero() && d > 0 {
		ttl += d
	}
	return ttl.Milliseconds()
}

//go:embed lua/order_gate.lua
var orderGateLua string

// orderGateScript decides whether an ordered job may run now (no asynq
// counterpart). Its KEYS and ARGV are listed in lua/order_gate.lua.
var orderGateScript = newScript(orderGateLua)

//go:embed lua/order_done.lua
var orderDoneLua string

// orderDoneScript records that the job holding a sequence has ended, so the
// next one of its key may run (no asynq counterpart). Its KEYS and ARGV are
// listed in lua/order_done.lua.
var orderDoneScript = newScript(orderDoneLua)

// OrderTurn is what OrderGate found.
type OrderTurn struct {
	Ordered bool  // false: the job has no sequence and runs unordered
	Seq     int64 // the job's sequence
	Ahead   int64 // jobs of its key that must end first; 0: it may run
}

// OrderGate tells whether job id of type typ, ordered by key in queue q, may
// run now.
func (r *RDB) OrderGate(ctx context.Context, q, typ, key, id string) (OrderTurn, error) {
	res, err := orderGateScript.Run(ctx, r.c,
		[]string{TaskKey(q, id), OrderKey(q, typ, key), TaskKeyPrefix(q)},
		id, OrderTTL.Milliseconds()).Result()
	if err != nil {
		return OrderTurn{}, fmt.Errorf("order gate %s %s: %w", typ, id, err)
	}
	vals, ok := res.([]any)
	if !ok {
		return OrderTurn{}, nil
	}
	if len(vals) != 2 {
		return OrderTurn{}, fmt.Errorf("order gate %s %s: unexpected answer %v", typ, id, res)
	}
	seq, _ := vals[0].(int64)
	ahead, _ := vals[1].(int64)
	return OrderTurn{Ordered: true, Seq: seq, Ahead: ahead}, nil
}

// OrderDone records that the job holding sequence seq of key (type typ, queue
// q) has ended: completed, or failed for good.
func (r *RDB) OrderDone(ctx context.Context, q, typ, key string, seq int64) error {
	if err := orderDoneScript.Run(ctx, r.c, []string{OrderKey(q, typ, key)}, seq, OrderTTL.Milliseconds()).Err(); err != nil {
		return fmt.Errorf("order done %s %s seq %d: %w", typ, key, seq, err)
	}
	return nil
}
