-- orderGateScript decides whether an ordered job may run now. It has no asynq
-- counterpart: asynq has no ordering.
--
-- KEYS[1] -> asynq:{<q>}:t:<id>
-- KEYS[2] -> errand:{<q>}:order:<type>:<key> (OrderKey)
-- KEYS[3] -> asynq:{<q>}:t: (TaskKeyPrefix), for the predecessors' states
-- ARGV[1] -> task id
-- ARGV[2] -> the hash's lifetime, ms
--
-- Returns -1 when the job has no sequence (queued without ordering: by
-- another program, or before its type was ordered), else {seq, ahead}: the
-- job's sequence and how many jobs of its key must end before it may run.
local seq = tonumber(redis.call('HGET', KEYS[1], 'order_seq'))
if not seq then return -1 end
local done = tonumber(redis.call('HGET', KEYS[2], 'done') or '0')
if seq <= done then
	-- Its key moved past it: it ended before and runs again (a failed job
	-- retried by hand). It takes a new place at the end of its key's line.
	seq = redis.call('HINCRBY', KEYS[2], 'next', 1)
	redis.call('HSET', KEYS[2], 's' .. seq, ARGV[1])
	redis.call('HSET', KEYS[1], 'order_seq', seq)
end
-- Skip predecessors that will never end: gone from Redis, or ended without
-- moving the key on (a worker lost between the two).
while done + 1 < seq do
	local id = redis.call('HGET', KEYS[2], 's' .. (done + 1))
	if id then
		local state = redis.call('HGET', KEYS[3] .. id, 'state')
		if state and state ~= 'completed' and state ~= 'archived' then break end
	end
	done = done + 1
	redis.call('HDEL', KEYS[2], 's' .. done)
	redis.call('HSET', KEYS[2], 'done', done)
end
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[2]) then
	redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
return {seq, seq - done - 1}
