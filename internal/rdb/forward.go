package rdb

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// forwardScript moves the jobs of one queue whose due instant has come from
// its scheduled and retry sets to its pending list — or, for a job of a
// group, to its group, as asynq does: asynq v0.26.0's forwardCmd, for both
// sets at once, at the millisecond instead of the whole second. It looks at
// most ARGV[2] jobs ahead in each set.
//
// KEYS[1] -> asynq:{<q>}:scheduled
// KEYS[2] -> asynq:{<q>}:retry
// KEYS[3] -> asynq:{<q>}:pending
// KEYS[4] -> asynq:{<q>}:t: (the task hashes: this prefix and an id)
// KEYS[5] -> asynq:{<q>}:g: (the group sets: this prefix and a group)
// ARGV[1] -> now, as a score (DueScore's form)
// ARGV[2] -> how many jobs to look at per set
// ARGV[3] -> now, Unix ns (pending_since)
// ARGV[4] -> the queue's name, for the wake-up
//
// Returns {moved, next}: next is the earliest score still waiting, "" if none.
var forwardScript = newScript(`
local moved = 0
local next = nil
local limit = tonumber(ARGV[2])
local now = tonumber(ARGV[1])
for s = 1, 2 do
	local head = redis.call('ZRANGE', KEYS[s], 0, limit - 1, 'WITHSCORES')
	for j = 1, #head, 2 do
		local id, score = head[j], tonumber(head[j + 1])
		if score > now then
			if next == nil or score < next then next = score end
			break
		end
		local task = KEYS[4] .. id
		local group = redis.call('HGET', task, 'group')
		redis.call('ZREM', KEYS[s], id)
		if group and group ~= '' then
			redis.call('ZADD', KEYS[5] .. group, ARGV[1], id)
			redis.call('HSET', task, 'state', 'aggregating')
		else
			redis.call('LPUSH', KEYS[3], id)
			redis.call('HSET', task, 'state', 'pending', 'pending_since', ARGV[3])
		end
		moved = moved + 1
	end
end
if moved > 0 then redis.call('PUBLISH', WAKE, 'job:' .. ARGV[4]) end
if next == nil then return {moved, ''} end
return {moved, string.format('%.3f', next)}
`)

// ForwardDue moves the jobs of the queues that are due at now to their
// pending lists, in one round trip: one script per queue, each looking at most
// limit jobs ahead per set. It returns how many it moved in all (when that
// reaches limit, more may be due already) and the earliest due instant still
// waiting (zero if none).
func (r *RDB) ForwardDue(ctx context.Context, queues []string, now time.Time, limit int) (moved int, next time.Time, err error) {
	score := strconv.FormatFloat(float64(now.UnixMilli())/1000, 'f', 3, 64)
	calls := make([]*evalCall, len(queues))
	for i, q := range queues {
		calls[i] = &evalCall{script: forwardScript,
			keys: []string{ScheduledKey(q), RetryKey(q), PendingKey(q), TaskKeyPrefix(q), GroupKeyPrefix(q)},
			args: []any{score, limit, now.UnixNano(), q}}
	}
	r.runPipelined(ctx, calls, nil)
	for i, c := range calls {
		res, cerr := c.cmd.Slice()
		if cerr == nil && len(res) != 2 {
			cerr = fmt.Errorf("forward script answered %v", res)
		}
		if cerr != nil {
			if err == nil {
				err = fmt.Errorf("forward due jobs of %s: %w", queues[i], cerr)
			}
			continue
		}
		n, _ := res[0].(int64)
		moved += int(n)
		if s, _ := res[1].(string); s != "" {
			if at, ok := parseScore(s); ok && (next.IsZero() || at.Before(next)) {
				next = at
			}
		}
	}
	return moved, next, err
}
