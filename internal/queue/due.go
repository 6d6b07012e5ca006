package queue

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// dueKey holds every delayed job's exact due instant (ms) beside asynq's own
// schedule, which keeps only whole seconds. Members are "queue\x1fid".
const dueKey = "errand:due"

// claimDue takes the members due by ARGV[1] (ms), at most ARGV[2] of them, in
// one step, so that of several workers exactly one forwards each job.
var claimDue = redis.NewScript(`
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #due > 0 then redis.call('ZREM', KEYS[1], unpack(due)) end
return due
`)

// handOver moves a job that waits (scheduled, or waiting to retry) to its
// queue's pending list, and nothing else: a job that completed, failed for
// good, is pending or gone is left alone — asynq's own RunTask would run a
// completed or failed job again. It answers "ok", or the state it found. The
// keys are asynq's layout (asynq:{queue}:t:<id>, :pending, :scheduled,
// :retry), as its own scripts use them.
var handOver = redis.NewScript(`
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'scheduled' and state ~= 'retry' then
	return state or 'gone'
end
if redis.call('ZREM', ARGV[2] .. state, ARGV[1]) == 0 then
	return 'gone'
end
redis.call('LPUSH', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], 'state', 'pending')
redis.call('PUBLISH', 'errand:wake', 'job')
return 'ok'
`)

func handOverTask(ctx context.Context, rdb redis.UniversalClient, queue, id string) (string, error) {
	prefix := "asynq:{" + queue + "}:"
	return handOver.Run(ctx, rdb, []string{prefix + "t:" + id, prefix + "pending"}, id, prefix).Text()
}

// noteDue records a job's exact due instant (a delayed job, or a retry) for
// the due forwarder, and wakes the forwarders, in one round trip. Losing the
// note costs only precision: asynq still runs the job in the second after it
// is due.
func noteDue(ctx context.Context, rdb redis.UniversalClient, queue, id string, at time.Time) {
	if rdb == nil {
		return
	}
	p := rdb.Pipeline()
	p.ZAdd(ctx, dueKey, redis.Z{Score: float64(at.UnixMilli()), Member: queue + "\x1f" + id})
	p.Publish(ctx, wakeChannel, wakeDue)
	_, _ = p.Exec(ctx)
}

// retryNoteFor is how long the forwarder keeps trying to hand over a job
// that is not yet where it can be handed over from (a retry whose failed
// attempt asynq is still recording).
const retryNoteFor = 2 * time.Second

// dueForwarder hands delayed jobs to the workers shortly before their exact
// due instant. asynq on its own moves a delayed job at a whole-second
// boundary, found by a periodic scan, so a job could start up to a check
// interval late; this wakes at each job's own time instead, lead early (the
// hand-over wakes the fetchers, which take the job at once), and the policy
// waits out the last milliseconds. It sleeps until the next due instant, or
// until a note for an earlier one wakes it (wakeDue), at most maxSleep.
type dueForwarder struct {
	rdb      redis.UniversalClient
	lead     time.Duration
	maxSleep time.Duration
	wake     chan struct{}
	log      *slog.Logger

	mu    sync.Mutex
	tries map[string]time.Time // notes put back, and when first handed over
}

func (f *dueForwarder) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *dueForwarder) run(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-f.wake:
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
		}
		t.Reset(f.step(ctx))
	}
}

// step forwards what is due and returns how long to sleep.
func (f *dueForwarder) step(ctx context.Context) time.Duration {
	now := time.Now()
	next, err := f.rdb.ZRangeWithScores(ctx, dueKey, 0, 0).Result()
	if err != nil || len(next) == 0 {
		return f.maxSleep
	}
	at := time.UnixMilli(int64(next[0].Score)).Add(-f.lead)
	if wait := at.Sub(now); wait > 0 {
		return min(wait, f.maxSleep)
	}
	horizon := strconv.FormatInt(now.Add(f.lead).UnixMilli(), 10)
	members, err := claimDue.Run(ctx, f.rdb, []string{dueKey}, horizon, 200).StringSlice()
	if err != nil {
		return f.maxSleep
	}
	for _, m := range members {
		q, id, ok := strings.Cut(m, "\x1f")
		if !ok {
			continue
		}
		state, err := handOverTask(ctx, f.rdb, q, id)
		switch {
		case err == nil && state == "active":
			// A retry whose failed attempt asynq is still recording: try
			// again a little later, for a short while.
			f.retryLater(ctx, m, now)
		default:
			// Handed over; or completed, failed for good, already pending,
			// deleted: nothing more to do.
			f.mu.Lock()
			delete(f.tries, m)
			f.mu.Unlock()
		}
	}
	if len(members) == 200 {
		return 0
	}
	return time.Millisecond
}

// retryLater puts a note back a little later, with a growing gap, until
// retryNoteFor has passed since it was first handed over.
func (f *dueForwarder) retryLater(ctx context.Context, member string, now time.Time) {
	f.mu.Lock()
	first, seen := f.tries[member]
	if !seen {
		first = now
		if f.tries == nil {
			f.tries = map[string]time.Time{}
		}
		f.tries[member] = now
	}
	f.mu.Unlock()
	elapsed := now.Sub(first)
	if elapsed > retryNoteFor {
		f.mu.Lock()
		delete(f.tries, member)
		f.mu.Unlock()
		return
	}
	gap := max(5*time.Millisecond, elapsed)
	_ = f.rdb.ZAdd(ctx, dueKey, redis.Z{Score: float64(now.Add(gap).Add(f.lead).UnixMilli()), Member: member}).Err()
}
