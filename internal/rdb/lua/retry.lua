-- retryScript puts a failed job back: into the retry set until its due
-- instant (asynq v0.26.0's retryCmd, at errand's exact instant rather than
-- the whole second), or straight onto the pending list when it is to run
-- again at once (asynq's retryCmd with the forwarder's move folded in).
--
-- KEYS[1] -> asynq:{<q>}:t:<id>
-- KEYS[2] -> asynq:{<q>}:active
-- KEYS[3] -> asynq:{<q>}:lease
-- KEYS[4] -> asynq:{<q>}:retry, or asynq:{<q>}:pending to run at once
-- KEYS[5] -> asynq:{<q>}:processed:<yyyy-mm-dd>
-- KEYS[6] -> asynq:{<q>}:failed:<yyyy-mm-dd>
-- KEYS[7] -> asynq:{<q>}:processed
-- KEYS[8] -> asynq:{<q>}:failed
-- KEYS[9] -> errand:{<q>}:owners (OwnersKey)
-- ARGV[1] -> task id
-- ARGV[2] -> the updated message
-- ARGV[3] -> due score (DueScore), or "0" to run at once
-- ARGV[4] -> 1 if the attempt counts as a failure, else 0
-- ARGV[5] -> when the day's counters expire, Unix s
-- ARGV[6] -> now, Unix ns (pending_since)
-- ARGV[7] -> the queue's name, for the wake-up
-- ARGV[8] -> the worker that ran it ("" for none)
--
-- Returns 1, or 0 when this worker no longer holds the job (its lease was
-- lost: it may be pending again, or running on another worker).
--
-- It runs after count_failure.lua and release.lua, which define countFailure and
-- release.
--
-- WAKE is the wake-up channel, named by newScript (rdb.go).
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
