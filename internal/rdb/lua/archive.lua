-- archiveScript moves a job that failed for good to the archive (errand's
-- failed list) and trims the archive by age: asynq v0.26.0's archiveCmd,
-- without its trim by size (asynq keeps 10,000), so the archive agrees with
-- the durable failed list in the database, which is never trimmed silently.
--
-- KEYS[1] -> asynq:{<q>}:t:<id>
-- KEYS[2] -> asynq:{<q>}:active
-- KEYS[3] -> asynq:{<q>}:lease
-- KEYS[4] -> asynq:{<q>}:archived
-- KEYS[5] -> asynq:{<q>}:processed:<yyyy-mm-dd>
-- KEYS[6] -> asynq:{<q>}:failed:<yyyy-mm-dd>
-- KEYS[7] -> asynq:{<q>}:processed
-- KEYS[8] -> asynq:{<q>}:failed
-- KEYS[9] -> asynq:{<q>}:t: (the task hashes of trimmed jobs: this prefix and an id)
-- KEYS[10] -> errand:{<q>}:owners (OwnersKey)
-- ARGV[1] -> task id
-- ARGV[2] -> the updated message
-- ARGV[3] -> now, Unix s
-- ARGV[4] -> the cut-off, Unix s: older failures are deleted
-- ARGV[5] -> when the day's counters expire, Unix s
-- ARGV[6] -> the worker that ran it ("" for none)
--
-- Returns 1, or 0 when this worker no longer holds the job.
--
-- It runs after count_failure.lua and release.lua, which define countFailure and
-- release.
local id = ARGV[1]
if not release(KEYS[2], KEYS[10], id, ARGV[6]) then return 0 end
redis.call('ZREM', KEYS[3], id)
redis.call('ZADD', KEYS[4], ARGV[3], id)
local old = redis.call('ZRANGE', KEYS[4], '-inf', ARGV[4], 'BYSCORE')
if #old > 0 then
	for _, x in ipairs(old) do redis.call('DEL', KEYS[9] .. x) end
	redis.call('ZREM', KEYS[4], unpack(old))
end
redis.call('HSET', KEYS[1], 'msg', ARGV[2], 'state', 'archived')
countFailure(KEYS[5], KEYS[6], KEYS[7], KEYS[8], ARGV[5])
return 1
