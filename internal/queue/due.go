package queue

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
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

// noteDue records a delayed job's exact due instant for the due forwarder.
// Losing the note costs only precision: asynq still runs the job in its due
// second and the policy waits for the exact instant.
func noteDue(ctx context.Context, rdb redis.UniversalClient, e Envelope) {
	_ = rdb.ZAdd(ctx, dueKey, redis.Z{Score: float64(e.DueAt.UnixMilli()), Member: e.Queue + "\x1f" + e.ID}).Err()
}

// dueForwarder hands delayed jobs to the workers shortly before their exact
// due instant. asynq on its own moves a delayed job at a whole-second
// boundary, found by a periodic scan, so a job could start up to a check
// interval late; this wakes at each job's own time instead, lead early (so
// that an idle fetcher, polling every poll interval, has picked it up by
// then), and the policy waits out the last milliseconds.
type dueForwarder struct {
	rdb  redis.UniversalClient
	ins  *asynq.Inspector
	lead time.Duration
	log  *slog.Logger
}

// maxDueSleep bounds the forwarder's sleep, so a job queued meanwhile with an
// earlier due time is seen in time (one Redis command per wake).
const maxDueSleep = 100 * time.Millisecond

func (f *dueForwarder) run(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		t.Reset(f.step(ctx))
	}
}

// step forwards what is due and returns how long to sleep.
func (f *dueForwarder) step(ctx context.Context) time.Duration {
	now := time.Now()
	next, err := f.rdb.ZRangeWithScores(ctx, dueKey, 0, 0).Result()
	if err != nil || len(next) == 0 {
		return maxDueSleep
	}
	at := time.UnixMilli(int64(next[0].Score)).Add(-f.lead)
	if wait := at.Sub(now); wait > 0 {
		return min(wait, maxDueSleep)
	}
	horizon := strconv.FormatInt(now.Add(f.lead).UnixMilli(), 10)
	members, err := claimDue.Run(ctx, f.rdb, []string{dueKey}, horizon, 200).StringSlice()
	if err != nil {
		return maxDueSleep
	}
	for _, m := range members {
		q, id, ok := strings.Cut(m, "\x1f")
		if !ok {
			continue
		}
		// Already forwarded by asynq, or deleted: nothing to do.
		_ = f.ins.RunTask(q, id)
	}
	if len(members) == 200 {
		return 0
	}
	return time.Millisecond
}
