-- requeueScript puts a job interrupted by shutdown back at the head of its
-- pending list, unchanged: asynq v0.26.0's requeueCmd, which also wakes the
-- workers.
--
-- KEYS[1] -> asynq:{<q>}:active
-- KEYS[2] -> asynq:{<q>}:lease
-- KEYS[3] -> asynq:{<q>}:pending
-- KEYS[4] -> asynq:{<q>}:t:<id>
-- KEYS[5] -> errand:{<q>}:owners (OwnersKey)
-- ARGV[1] -> task id
-- ARGV[2] -> the queue's name, for the wake-up
-- ARGV[3] -> the worker that ran it ("" for none)
--
-- Returns 1, or 0 when this worker no longer holds the job.
--
-- It runs after release.lua, which defines release.
--
-- WAKE is the wake-up channel, named by newScript (rdb.go).
local id = ARGV[1]
if not release(KEYS[1], KEYS[5], id, ARGV[3]) then return 0 end
redis.call('ZREM', KEYS[2], id)
redis.call('RPUSH', KEYS[3], id)
redis.call('HSET', KEYS[4], 'state', 'pending')
redis.call('PUBLISH', WAKE, 'job:' .. ARGV[2])
return 1
