package rdb

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/errandhq/errand/internal/rdb/taskmsg"
	"github.com/redis/go-redis/v9"
)

// Task is a job to write into Redis.
type Task struct {
	ID, Type, Queue string
	Payload         []byte
	Headers         map[string]string
	// Retry is asynq's limit on retries, stored in the message.
	Retry int
	// Timeout is asynq's deadline for one attempt; Retention how long a
	// completed job is kept (0: deleted at once). Both in whole seconds.
	Timeout, Retention time.Duration
	// DueAt is when a delayed job is due; zero for a job to run now.
	DueAt time.Time
	// OrderKey, when set, is the job's ordering key (see order.go): the job
	// takes the next sequence number of its (queue, type, key).
	OrderKey string
}

func (t Task) message() []byte {
	return taskmsg.Encode(Message{
		Type: t.Type, Payload: t.Payload, Headers: t.Headers, ID: t.ID, Queue: t.Queue,
		Retry:     t.Retry,
		Timeout:   int64(t.Timeout / time.Second),
		Retention: int64(t.Retention / time.Second),
	})
}

// enqueueScript writes a new job: asynq v0.26.0's enqueueCmd (a job to run
// now) and scheduleCmd (a job for later) in one script, which also wakes idle
// workers. A delayed job is scored by its exact due instant (DueScore), not
// the whole second asynq writes: asynq's forwarder moves it at the second
// after, errand's due forwarder at its instant, neither before.
//
// KEYS[1] -> asynq:{<q>}:t:<id>
// KEYS[2] -> asynq:{<q>}:pending (now) or asynq:{<q>}:scheduled (later)
// ARGV[1] -> task id
// ARGV[2] -> the encoded message
// ARGV[3] -> now, Unix ns (pending_since)
// ARGV[4] -> due score (DueScore), or "0" for now
// ARGV[5] -> the queue's name, for the wake-up
// KEYS[3] -> errand:{<q>}:order:<type>:<key> (OrderKey), only for an ordered job
// ARGV[6] -> that hash's lifetime, ms, only for an ordered job
//
// Returns 1, or 0 when the id is taken.
var enqueueScript = newScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if KEYS[3] then
	-- errand's own addition: the job's place in its key's line (order.go).
	local seq = redis.call('HINCRBY', KEYS[3], 'next', 1)
	redis.call('HSET', KEYS[3], 's' .. seq, ARGV[1])
	if redis.call('PTTL', KEYS[3]) < tonumber(ARGV[6]) then
		redis.call('PEXPIRE', KEYS[3], ARGV[6])
	end
	redis.call('HSET', KEYS[1], 'order_seq', seq)
end
if ARGV[4] == '0' then
	redis.call('HSET', KEYS[1], 'msg', ARGV[2], 'state', 'pending', 'pending_since', ARGV[3])
	-- Only a list that was empty can have idle workers waiting on it: a
	-- worker sleeps only after finding its lists empty, and comes back by
	-- itself while there is more than it could take.
	if redis.call('LPUSH', KEYS[2], ARGV[1]) == 1 then
		redis.call('PUBLISH', WAKE, 'job:' .. ARGV[5])
	end
else
	redis.call('HSET', KEYS[1], 'msg', ARGV[2], 'state', 'scheduled')
	redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
	redis.call('PUBLISH', WAKE, 'due:' .. ARGV[4])
end
return 1
`)

func (r *RDB) enqueueCall(t Task, now time.Time) *evalCall {
	keys := []string{TaskKey(t.Queue, t.ID), PendingKey(t.Queue)}
	due := "0"
	if !t.DueAt.IsZero() {
		due = DueScore(t.DueAt)
		keys[1] = ScheduledKey(t.Queue)
	}
	args := []any{t.ID, t.message(), now.UnixNano(), due, t.Queue}
	if t.OrderKey != "" {
		keys = append(keys, OrderKey(t.Queue, t.Type, t.OrderKey))
		args = append(args, orderTTLms(t.DueAt, now))
	}
	return &evalCall{script: enqueueScript, keys: keys, args: args}
}

// Enqueue writes a job. A job whose id is taken returns ErrDuplicate and
// changes nothing.
func (r *RDB) Enqueue(ctx context.Context, t Task) error {
	if _, known := r.known.Load(t.Queue); !known {
		return r.EnqueueMany(ctx, []Task{t})[0]
	}
	// The common case, a queue already added: one script, no pipeline.
	c := r.enqueueCall(t, time.Now())
	n, err := c.script.Run(ctx, r.c, c.keys, c.args...).Int()
	switch {
	case err != nil:
		return fmt.Errorf("enqueue %s %s: %w", t.Type, t.ID, err)
	case n == 0:
		return ErrDuplicate
	}
	return nil
}

// EnqueueMany writes jobs in one round trip: one script per job, and asynq's
// set of queues is told every queue of the batch (one SADD, even for queues
// this process added before: a failover or restart that lost the set gets
// it back, so the dashboard lists them). It returns one error per job: nil,
// ErrDuplicate, or why it failed.
func (r *RDB) EnqueueMany(ctx context.Context, ts []Task) []error {
	return r.enqueueMany(ctx, ts)
}

// EnqueueManyWait is EnqueueMany followed by WAIT 1 timeout, and returns
// how many replicas acknowledged the jobs too (0 on an error). WAIT counts
// the writes of the connection it is sent on up to its last one, so it ends
// the same pipeline after a PUBLISH on ReplicaChannel: that write comes after
// every job, including one refused as a duplicate (written earlier, maybe on
// another connection). A NOSCRIPT retry is another round trip with its own
// WAIT, and the lower count is the answer. Not for a Cluster client: it
// would send WAIT to a node of its choosing. A timeout of 0 is EnqueueMany.
func (r *RDB) EnqueueManyWait(ctx context.Context, ts []Task, timeout time.Duration) ([]error, int64) {
	if timeout <= 0 {
		return r.enqueueMany(ctx, ts), 0
	}
	var waits []*redis.Cmd
	errs := r.enqueueMany(ctx, ts, func(p redis.Pipeliner) {
		p.Publish(ctx, ReplicaChannel, "")
		waits = append(waits, p.Do(ctx, "wait", 1, timeout.Milliseconds()))
	})
	acked := int64(-1)
	for _, w := range waits {
		n, err := w.Int64()
		if err != nil {
			return errs, 0
		}
		if acked < 0 || n < acked {
			acked = n
		}
	}
	return errs, max(acked, 0)
}

func (r *RDB) enqueueMany(ctx context.Context, ts []Task, after ...func(redis.Pipeliner)) []error {
	now := time.Now()
	calls := make([]*evalCall, len(ts))
	var newQueues []string
	for i, t := range ts {
		calls[i] = r.enqueueCall(t, now)
		if !slices.Contains(newQueues, t.Queue) {
			newQueues = append(newQueues, t.Queue)
		}
	}
	var added *redis.IntCmd
	var extra func(redis.Pipeliner)
	if len(newQueues) > 0 {
		extra = func(p redis.Pipeliner) {
			added = p.SAdd(ctx, AllQueuesKey, anys(newQueues)...)
		}
	}
	r.runPipelined(ctx, calls, extra, after...)
	// A failed SADD leaves the queues unknown: the next job tries again.
	if added != nil && added.Err() == nil {
		for _, q := range newQueues {
			r.known.Store(q, true)
		}
	}
	return enqueued(ts, calls)
}

// enqueued is the outcome of each job's enqueue call: nil, ErrDuplicate, or
// why it failed.
func enqueued(ts []Task, calls []*evalCall) []error {
	errs := make([]error, len(ts))
	for i, c := range calls {
		n, err := c.cmd.Int()
		switch {
		case err != nil:
			errs[i] = fmt.Errorf("enqueue %s %s: %w", ts[i].Type, ts[i].ID, err)
		case n == 0:
			errs[i] = ErrDuplicate
		}
	}
	return errs
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
