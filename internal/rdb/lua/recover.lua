-- recoverScript puts back lost jobs of one queue, each as a used attempt to
-- run again at once with its id: asynq v0.26.0's recoverer (its retryCmd with
-- the forwarder's move folded in), for many jobs at once. A job is moved only
-- if it is still leased to the owner lostScript saw and that lease has ended
-- or that owner is dead: a worker that renewed meanwhile keeps its job.
--
-- KEYS[1] -> asynq:{<q>}:active
-- KEYS[2] -> asynq:{<q>}:lease
-- KEYS[3] -> errand:{<q>}:owners (OwnersKey)
-- KEYS[4] -> asynq:{<q>}:pending
-- KEYS[5] -> asynq:{<q>}:processed:<yyyy-mm-dd>
-- KEYS[6] -> asynq:{<q>}:failed:<yyyy-mm-dd>
-- KEYS[7] -> asynq:{<q>}:processed
-- KEYS[8] -> asynq:{<q>}:failed
-- KEYS[9] -> asynq:{<q>}:t: (the task hashes: this prefix and an id)
-- ARGV[1] -> the latest lease end that has passed, Unix s
-- ARGV[2] -> now, Unix ns (pending_since)
-- ARGV[3] -> when the day's counters expire, Unix s
-- ARGV[4] -> the queue's name, for the wake-up
-- ARGV[5] -> d, how many workers are known dead
-- ARGV[6..5+d] -> those workers
-- ARGV[6+d..] -> per job three: id, its owner as listed, the updated message
--
-- Returns how many jobs it put back.
--
-- It runs after count_failure.lua, which defines countFailure.
--
-- WAKE is the wake-up channel, named by newScript (rdb.go).
local d = tonumber(ARGV[5])
local dead = {}
for i = 6, 5 + d do dead[ARGV[i]] = true end
local n = 0
for a = 6 + d, #ARGV, 3 do
	local id, owner = ARGV[a], ARGV[a + 1]
	local ends = redis.call('ZSCORE', KEYS[2], id)
	if ends and (redis.call('HGET', KEYS[3], id) or '') == owner
		and (tonumber(ends) <= tonumber(ARGV[1]) or (owner ~= '' and dead[owner]))
		and redis.call('LREM', KEYS[1], 0, id) > 0 then
		redis.call('ZREM', KEYS[2], id)
		redis.call('HDEL', KEYS[3], id)
		redis.call('LPUSH', KEYS[4], id)
		redis.call('HSET', KEYS[9] .. id, 'msg', ARGV[a + 2], 'state', 'pending', 'pending_since', ARGV[2])
		countFailure(KEYS[5], KEYS[6], KEYS[7], KEYS[8], ARGV[3])
		n = n + 1
	end
end
if n > 0 then redis.call('PUBLISH', WAKE, 'job:' .. ARGV[4]) end
return n
