-- orderDoneScript records that the job holding a sequence has ended, so the
-- next one of its key may run. No asynq counterpart.
--
-- KEYS[1] -> errand:{<q>}:order:<type>:<key> (OrderKey)
-- ARGV[1] -> the ended job's sequence
-- ARGV[2] -> the hash's lifetime, ms
--
-- Returns the key's done sequence after the call.
local seq = tonumber(ARGV[1])
local done = tonumber(redis.call('HGET', KEYS[1], 'done') or '0')
if seq > done then
	-- Normally seq is done+1; the bound keeps a key whose hash expired
	-- under a late job from a long loop.
	for s = math.max(done + 1, seq - 1000), seq do
		redis.call('HDEL', KEYS[1], 's' .. s)
	end
	redis.call('HSET', KEYS[1], 'done', seq)
	done = seq
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return done
