package rdb

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// luaCountFailure adds a failed attempt to a queue's counters as asynq v0.26.0
// counts it (the tail of its retryCmd and archiveCmd): processed and failed,
// for the day (the counter expires at the given instant) and in total. The
// four keys are the day's processed and failed counters, then the totals.
const luaCountFailure = `
local function countFailure(dayProcessed, dayFailed, processed, failed, expire)
	for _, key in ipairs({dayProcessed, dayFailed}) do
		if redis.call('INCR', key) == 1 then redis.call('EXPIREAT', key, expire) end
	end
	redis.call('INCR', processed)
	redis.call('INCR', failed)
end
`

// luaRelease defines release, which takes job id off the active list and
// forgets its owner if worker still holds it — the job is active, leased in
// worker's name ("" for a job leased in no one's) — and says whether it did. A worker whose lease was lost (a
// Redis blip kept it from renewing) and whose job a recoverer put back, or
// another worker took meanwhile, must not record an outcome for it.
const luaRelease = `
local function release(active, owners, id, worker)
	if (redis.call('HGET', owners, id) or '') ~= worker then return false end
	if redis.call('LREM', active, 0, id) == 0 then return false end
	redis.call('HDEL', owners, id)
	return true
end
`

// retryScript puts a failed job back: into the retry set until its due
// instant (asynq v0.26.0's retryCmd, at errand's exact instant rather than
// the whole second), or straight onto the pending list when it is to run
// again at once (asynq's retryCmd with the forwarder's move folded in).
//
// KEYS[1] -> asynq:{<q>}:t:<id>
// KEYS[2] -> asynq:{<q>}:active
// KEYS[3] -> asynq:{<q>}:lease
// KEYS[4] -> asynq:{<q>}:retry, or asynq:{<q>}:pending to run at once
// KEYS[5] -> asynq:{<q>}:processed:<yyyy-mm-dd>
// KEYS[6] -> asynq:{<q>}:failed:<yyyy-mm-dd>
// KEYS[7] -> asynq:{<q>}:processed
// KEYS[8] -> asynq:{<q>}:failed
// KEYS[9] -> errand:{<q>}:owners (OwnersKey)
// ARGV[1] -> task id
// ARGV[2] -> the updated message
// ARGV[3] -> due score (DueScore), or "0" to run at once
// ARGV[4] -> 1 if the attempt counts as a failure, else 0
// ARGV[5] -> when the day's counters expire, Unix s
// ARGV[6] -> now, Unix ns (pending_since)
// ARGV[7] -> the queue's name, for the wake-up
// ARGV[8] -> the worker that ran it ("" for none)
//
// Returns 1, or 0 when this worker no longer holds the job (its lease was
// lost: it may be pending again, or running on another worker).
var retryScript = newScript(luaCountFailure + luaRelease + `
local id = ARGV[1]
if not release(KEYS[2], KEYS[9], id, ARGV[8]) then return 0 end
redis.call('ZREM', KEYS[3], id)
if ARGV[3] == '0' then
	redis.call('LPUSH', KEYS[4], id)
	redis.call('HSET', KEYS[1], 'msg', ARGV[2], 'state', 'pending', 'pending_since', ARGV[6])
	redis.call('PUBLISH', WAKE, 'job:' .. ARGV[7])
else
	redis.call('ZADD', KEYS[4], ARGV[3], id)
	redis.call('HSET', KEYS[1], 'msg', ARGV[2], 'state', 'retry')
	redis.call('PUBLISH', WAKE, 'due:' .. ARGV[3])
end
if ARGV[4] == '1' then countFailure(KEYS[5], KEYS[6], KEYS[7], KEYS[8], ARGV[5]) end
return 1
`)

// Retry records a failed attempt of j and puts it back to run at at (zero:
// at once). A failure that counts adds one to the job's retried count and to
// the queue's failure counters; one that does not (a throttled call) leaves
// both.
func (r *RDB) Retry(ctx context.Context, j *Fetched, errMsg string, counts bool, at time.Time) error {
	now := time.Now()
	retried, c := -1, 0
	if counts {
		retried, c = j.Msg.Retried+1, 1
	}
	q := j.Queue
	dest, score := PendingKey(q), "0"
	if !at.IsZero() {
		dest, score = RetryKey(q), DueScore(at)
	}
	keys := []string{TaskKey(q, j.ID), ActiveKey(q), LeaseKey(q), dest,
		ProcessedKey(q, now), FailedKey(q, now), ProcessedTotalKey(q), FailedTotalKey(q), OwnersKey(q)}
	msg := withFailure(j.raw, retried, errMsg, now.Unix())
	err := retryScript.Run(ctx, r.c, keys, j.ID, msg, score, c, now.Add(statsTTL).Unix(), now.UnixNano(), q, j.owner).Err()
	if err != nil {
		return fmt.Errorf("retry %s on %s: %w", j.ID, q, err)
	}
	return nil
}

// archiveScript moves a job that failed for good to the archive (errand's
// failed list) and trims the archive by age and size: asynq v0.26.0's
// archiveCmd.
//
// KEYS[1] -> asynq:{<q>}:t:<id>
// KEYS[2] -> asynq:{<q>}:active
// KEYS[3] -> asynq:{<q>}:lease
// KEYS[4] -> asynq:{<q>}:archived
// KEYS[5] -> asynq:{<q>}:processed:<yyyy-mm-dd>
// KEYS[6] -> asynq:{<q>}:failed:<yyyy-mm-dd>
// KEYS[7] -> asynq:{<q>}:processed
// KEYS[8] -> asynq:{<q>}:failed
// KEYS[9] -> asynq:{<q>}:t: (the task hashes of trimmed jobs: this prefix and an id)
// KEYS[10] -> errand:{<q>}:owners (OwnersKey)
// ARGV[1] -> task id
// ARGV[2] -> the updated message
// ARGV[3] -> now, Unix s
// ARGV[4] -> the cut-off, Unix s: older failures are deleted
// ARGV[5] -> the archive's size limit
// ARGV[6] -> when the day's counters expire, Unix s
// ARGV[7] -> the worker that ran it ("" for none)
//
// Returns 1, or 0 when this worker no longer holds the job.
var archiveScript = redis.NewScript(luaCountFailure + luaRelease + `
local id = ARGV[1]
if not release(KEYS[2], KEYS[10], id, ARGV[7]) then return 0 end
redis.call('ZREM', KEYS[3], id)
redis.call('ZADD', KEYS[4], ARGV[3], id)
local old = redis.call('ZRANGE', KEYS[4], '-inf', ARGV[4], 'BYSCORE')
local extra = redis.call('ZRANGE', KEYS[4], 0, -tonumber(ARGV[5]))
for _, set in ipairs({old, extra}) do
	if #set > 0 then
		for _, x in ipairs(set) do redis.call('DEL', KEYS[9] .. x) end
		redis.call('ZREM', KEYS[4], unpack(set))
	end
end
redis.call('HSET', KEYS[1], 'msg', ARGV[2], 'state', 'archived')
countFailure(KEYS[5], KEYS[6], KEYS[7], KEYS[8], ARGV[6])
return 1
`)

// Archive moves j, failed for good with errMsg, to the failed list. Its
// retried count is left as it is.
func (r *RDB) Archive(ctx context.Context, j *Fetched, errMsg string) error {
	now := time.Now()
	q := j.Queue
	keys := []string{TaskKey(q, j.ID), ActiveKey(q), LeaseKey(q), ArchivedKey(q),
		ProcessedKey(q, now), FailedKey(q, now), ProcessedTotalKey(q), FailedTotalKey(q), TaskKeyPrefix(q), OwnersKey(q)}
	msg := withFailure(j.raw, -1, errMsg, now.Unix())
	err := archiveScript.Run(ctx, r.c, keys, j.ID, msg, now.Unix(), now.Add(-archivedFor).Unix(), maxArchived, now.Add(statsTTL).Unix(), j.owner).Err()
	if err != nil {
		return fmt.Errorf("archive %s on %s: %w", j.ID, q, err)
	}
	return nil
}

// requeueScript puts a job interrupted by shutdown back at the head of its
// pending list, unchanged: asynq v0.26.0's requeueCmd, which also wakes the
// workers.
//
// KEYS[1] -> asynq:{<q>}:active
// KEYS[2] -> asynq:{<q>}:lease
// KEYS[3] -> asynq:{<q>}:pending
// KEYS[4] -> asynq:{<q>}:t:<id>
// KEYS[5] -> errand:{<q>}:owners (OwnersKey)
// ARGV[1] -> task id
// ARGV[2] -> the queue's name, for the wake-up
// ARGV[3] -> the worker that ran it ("" for none)
//
// Returns 1, or 0 when this worker no longer holds the job.
var requeueScript = newScript(luaRelease + `
local id = ARGV[1]
if not release(KEYS[1], KEYS[5], id, ARGV[3]) then return 0 end
redis.call('ZREM', KEYS[2], id)
redis.call('RPUSH', KEYS[3], id)
redis.call('HSET', KEYS[4], 'state', 'pending')
redis.call('PUBLISH', WAKE, 'job:' .. ARGV[2])
return 1
`)

// Requeue puts j back on its queue, to run next; the attempt does not count.
func (r *RDB) Requeue(ctx context.Context, j *Fetched) error {
	q := j.Queue
	err := requeueScript.Run(ctx, r.c, []string{ActiveKey(q), LeaseKey(q), PendingKey(q), TaskKey(q, j.ID), OwnersKey(q)}, j.ID, q, j.owner).Err()
	if err != nil {
		return fmt.Errorf("requeue %s on %s: %w", j.ID, q, err)
	}
	return nil
}
