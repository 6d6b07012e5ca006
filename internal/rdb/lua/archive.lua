-- archiveScript moves a job that failed for good to the archive (errand's
-- failed list) and trims the archive by age and size: asynq v0.26.0's
-- archiveCmd.
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
-- ARGV[5] -> the archive's size limit
-- ARGV[6] -> when the day's counters expire, Unix s
-- ARGV[7] -> the worker that ran it ("" for none)
--
-- Returns 1, or 0 when this worker no longer holds the job.
--
-- It runs after count_failure.lua and release.lua, which define countFailure and
-- release.
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
