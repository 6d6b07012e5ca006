package queue

import (
	"context"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// A delayed job, or one waiting to retry, sits in its queue's scheduled or
// retry set (asynq's layout) scored by its exact due instant: Unix seconds
// with the milliseconds as a fraction, rounded up (dueScore). asynq's own
// scan moves jobs whose score is at most the current whole second, so on its
// own it would start a job up to its check interval late, but never early.
// The due forwarder moves each job at its own instant instead.

// forwardDue moves the jobs of the queues ARGV[4..] whose due instant has
// come (score ≤ ARGV[1]) from their scheduled and retry sets to their pending
// lists — or, for a job of a group, to its group, as asynq does — looking at
// most ARGV[2] jobs ahead in each set. It answers the number moved and the
// earliest score still waiting ("" if none), and wakes the workers when it
// moved a job. ARGV[3] is now in nanoseconds, the moved jobs' pending_since.
var forwardDue = redis.NewScript(`
local moved = 0
local next = nil
local limit = tonumber(ARGV[2])
local now = tonumber(ARGV[1])
for i = 4, #ARGV do
	local p = 'asynq:{' .. ARGV[i] .. '}:'
	for _, set in ipairs({'scheduled', 'retry'}) do
		local key = p .. set
		local head = redis.call('ZRANGE', key, 0, limit - 1, 'WITHSCORES')
		for j = 1, #head, 2 do
			local id, score = head[j], tonumber(head[j + 1])
			if score > now then
				if next == nil or score < next then next = score end
				break
			end
			local tk = p .. 't:' .. id
			local group = redis.call('HGET', tk, 'group')
			redis.call('ZREM', key, id)
			if group and group ~= '' then
				redis.call('ZADD', p .. 'g:' .. group, ARGV[1], id)
				redis.call('HSET', tk, 'state', 'aggregating')
			else
				redis.call('LPUSH', p .. 'pending', id)
				redis.call('HSET', tk, 'state', 'pending', 'pending_since', ARGV[3])
			end
			moved = moved + 1
		end
	end
end
if moved > 0 then redis.call('PUBLISH', 'errand:wake', 'job') end
if next == nil then return {moved, ''} end
return {moved, string.format('%.3f', next)}
`)

// forwardLimit is how many jobs one step looks at per set; a step that moved
// as many runs again at once.
const forwardLimit = 200

// dueForwarder hands delayed jobs and retries to the workers at their exact
// due instant. It sleeps until the earliest due instant it knows of; a job
// queued meanwhile with an earlier one wakes it (wakeDue, with the job's
// score), and it looks on its own at least every maxSleep, for jobs put in
// the sets by others (asynq's recoverer). Several workers may run one each:
// the script moves a job once.
type dueForwarder struct {
	rdb      redis.UniversalClient
	queues   []string
	maxSleep time.Duration
	log      *slog.Logger

	mu     sync.Mutex
	target time.Time     // when the forwarder runs next
	wake   chan struct{} // target moved earlier
}

func newDueForwarder(rdb redis.UniversalClient, queues []string, maxSleep time.Duration, log *slog.Logger) *dueForwarder {
	return &dueForwarder{rdb: rdb, queues: queues, maxSleep: maxSleep, log: log, wake: make(chan struct{}, 1)}
}

// due tells the forwarder a job is due at score (dueScore's form); it wakes
// earlier when that is before its next run.
func (f *dueForwarder) due(score string) {
	s, err := strconv.ParseFloat(score, 64)
	at := time.Now()
	if err == nil {
		sec, frac := math.Modf(s)
		at = time.Unix(int64(sec), int64(math.Round(frac*1000))*int64(time.Millisecond))
	}
	f.mu.Lock()
	earlier := at.Before(f.target)
	if earlier {
		f.target = at
	}
	f.mu.Unlock()
	if earlier {
		select {
		case f.wake <- struct{}{}:
		default:
		}
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
			next := f.step(ctx)
			f.mu.Lock()
			f.target = next
			f.mu.Unlock()
		case <-f.wake:
		}
		f.mu.Lock()
		wait := time.Until(f.target)
		f.mu.Unlock()
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(max(wait, 0))
	}
}

// step forwards what is due and returns when to run next.
func (f *dueForwarder) step(ctx context.Context) time.Time {
	for {
		now := time.Now()
		args := make([]any, 0, 3+len(f.queues))
		args = append(args, strconv.FormatFloat(float64(now.UnixMilli())/1000, 'f', 3, 64), forwardLimit, now.UnixNano())
		for _, q := range f.queues {
			args = append(args, q)
		}
		res, err := forwardDue.Run(ctx, f.rdb, nil, args...).Slice()
		if err != nil || len(res) != 2 {
			if ctx.Err() == nil && err != nil {
				f.log.Debug("due forwarder: Redis failed; trying again in a second", "error", err.Error())
			}
			return now.Add(min(time.Second, f.maxSleep))
		}
		moved, _ := res[0].(int64)
		if moved >= forwardLimit {
			continue // maybe more due already
		}
		next := now.Add(f.maxSleep)
		if s, _ := res[1].(string); s != "" {
			sec, frac, _ := strings.Cut(s, ".")
			si, _ := strconv.ParseInt(sec, 10, 64)
			ms, _ := strconv.ParseInt((frac + "000")[:3], 10, 64)
			if at := time.Unix(si, ms*int64(time.Millisecond)); at.Before(next) {
				next = at
			}
		}
		return next
	}
}
