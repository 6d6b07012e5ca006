-- fetchScript leases up to ARGV[2] jobs of one queue: asynq v0.26.0's
-- dequeueCmd (which takes one job per round trip), for many jobs at once.
-- The oldest jobs are at the list's tail: they are taken from there in three
-- commands, not one RPOPLPUSH per job, and handed out oldest first.
--
-- KEYS[1] -> asynq:{<q>}:pending
-- KEYS[2] -> asynq:{<q>}:paused
-- KEYS[3] -> asynq:{<q>}:active
-- KEYS[4] -> asynq:{<q>}:lease
-- KEYS[5] -> asynq:{<q>}:t: (the task hashes: this prefix and an id)
-- KEYS[6] -> errand:{<q>}:owners (OwnersKey)
-- KEYS[7] -> errand:{<q>}:workers (WorkersKey)
-- ARGV[1] -> lease end, Unix s
-- ARGV[2] -> how many jobs to take at most
-- ARGV[3] -> the worker taking them ("" for none: no owner is recorded)
-- ARGV[4] -> now, Unix s
-- ARGV[5] -> after how many seconds unseen a worker leaves KEYS[7]
--
-- Returns {left, id, msg, id, msg, …}: left is the pending list's length
-- after, -1 when the queue is paused (nothing taken); msg is "" for a task
-- hash that is gone.
if redis.call('EXISTS', KEYS[2]) == 1 then return {-1} end
local out = {0}
local ids = redis.call('LRANGE', KEYS[1], -tonumber(ARGV[2]), -1)
if #ids > 0 then
	redis.call('LTRIM', KEYS[1], 0, -#ids - 1)
	redis.call('LPUSH', KEYS[3], unpack(ids))
	local lease = {}
	for j = #ids, 1, -1 do
		local id = ids[j]
		local key = KEYS[5] .. id
		redis.call('HSET', key, 'state', 'active')
		redis.call('HDEL', key, 'pending_since')
		lease[#lease + 1] = ARGV[1]
		lease[#lease + 1] = id
		out[#out + 1] = id
		out[#out + 1] = redis.call('HGET', key, 'msg') or ''
	end
	redis.call('ZADD', KEYS[4], unpack(lease))
	if ARGV[3] ~= '' then
		local own = {}
		for _, id in ipairs(ids) do
			own[#own + 1] = id
			own[#own + 1] = ARGV[3]
		end
		redis.call('HSET', KEYS[6], unpack(own))
		redis.call('ZADD', KEYS[7], ARGV[4], ARGV[3])
		-- Workers not seen for a while hold nothing any more.
		redis.call('ZREMRANGEBYSCORE', KEYS[7], '-inf', tonumber(ARGV[4]) - ARGV[5])
	else
		redis.call('HDEL', KEYS[6], unpack(ids))
	end
end
out[1] = redis.call('LLEN', KEYS[1])
return out
