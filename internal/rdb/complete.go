package rdb

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// completeScript records finished jobs of one queue, many at once: asynq
// v0.26.0's markAsCompleteCmd (a job kept for its retention) and doneCmd (a
// job deleted at once), and their Unique variants (the job's uniqueness lock
// released). A job no longer active — its lease was lost and asynq's
// recoverer took it — is left alone.
//
// KEYS[1]      -> asynq:{<q>}:active
// KEYS[2]      -> asynq:{<q>}:lease
// KEYS[3]      -> asynq:{<q>}:completed
// KEYS[4]      -> asynq:{<q>}:processed:<yyyy-mm-dd>
// KEYS[5]      -> asynq:{<q>}:processed
// KEYS[6..5+k] -> asynq:{<q>}:t:<id> of the k jobs, in ARGV's order
// KEYS[6+k..]  -> the uniqueness locks (asynq:{<q>}:unique:…) held, in ARGV's order
// ARGV[1]      -> when the day's counter expires, Unix s
// ARGV[2]      -> now, Unix s
// ARGV[3..]    -> per job four: id, retention in s (0: delete it now), the message to keep, 1 if it holds a lock (else 0)
//
// Returns how many jobs it recorded.
var completeScript = redis.NewScript(`
local k = (#ARGV - 2) / 4
local lock = 6 + k
local done = {}
for j = 0, k - 1 do
	local a = 3 + 4 * j
	local id = ARGV[a]
	local task = KEYS[6 + j]
	if redis.call('LREM', KEYS[1], 0, id) > 0 then
		local keep = tonumber(ARGV[a + 1])
		if keep > 0 then
			redis.call('ZADD', KEYS[3], tonumber(ARGV[2]) + keep, id)
			redis.call('HSET', task, 'msg', ARGV[a + 2], 'state', 'completed')
		else
			redis.call('DEL', task)
		end
		if ARGV[a + 3] == '1' and redis.call('GET', KEYS[lock]) == id then
			redis.call('DEL', KEYS[lock])
		end
		done[#done + 1] = id
	end
	if ARGV[a + 3] == '1' then lock = lock + 1 end
end
if #done > 0 then
	redis.call('ZREM', KEYS[2], unpack(done))
	if redis.call('INCRBY', KEYS[4], #done) == #done then redis.call('EXPIREAT', KEYS[4], ARGV[1]) end
	redis.call('INCRBY', KEYS[5], #done)
end
return #done
`)

// Complete records jobs that succeeded, in one round trip: one script per
// queue. Jobs with a retention are kept that long as completed.
func (r *RDB) Complete(ctx context.Context, jobs []*Fetched) error {
	now := time.Now()
	byQueue := map[string][]*Fetched{}
	var order []string
	for _, j := range jobs {
		if _, seen := byQueue[j.Queue]; !seen {
			order = append(order, j.Queue)
		}
		byQueue[j.Queue] = append(byQueue[j.Queue], j)
	}
	calls := make([]*evalCall, 0, len(order))
	for _, q := range order {
		js := byQueue[q]
		keys := make([]string, 5, 5+len(js))
		keys[0], keys[1], keys[2], keys[3], keys[4] = ActiveKey(q), LeaseKey(q), CompletedKey(q), ProcessedKey(q, now), ProcessedTotalKey(q)
		args := make([]any, 0, 2+4*len(js))
		args = append(args, now.Add(statsTTL).Unix(), now.Unix())
		var locks []string
		for _, j := range js {
			keys = append(keys, TaskKey(q, j.ID))
			var keep []byte
			if j.Msg.Retention > 0 {
				keep = withCompleted(j.raw, now.Unix())
			}
			hasLock := 0
			if j.Msg.UniqueKey != "" {
				hasLock = 1
				locks = append(locks, j.Msg.UniqueKey)
			}
			args = append(args, j.ID, j.Msg.Retention, keep, hasLock)
		}
		keys = append(keys, locks...)
		calls = append(calls, &evalCall{script: completeScript, keys: keys, args: args})
	}
	r.runPipelined(ctx, calls, nil)
	for i, c := range calls {
		if err := c.cmd.Err(); err != nil {
			return fmt.Errorf("complete jobs of %s: %w", order[i], err)
		}
	}
	return nil
}
