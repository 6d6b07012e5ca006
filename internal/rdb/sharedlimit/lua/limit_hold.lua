-- limitHoldScript holds service until now+wait, or keeps a later hold.
--
-- KEYS[1] -> errand:{limit:<service>}:bucket (LimitKey)
-- ARGV[1] -> wait, ms
-- ARGV[2] -> errand:limit:hold (LimitHoldChannel), where the hold is told
-- ARGV[3] -> the service
--
-- Returns the hold's end, Redis ms.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local hold = tonumber(redis.call('HGET', KEYS[1], 'hold') or '0')
local want = now + tonumber(ARGV[1])
if want > hold then
	hold = want
	redis.call('HSET', KEYS[1], 'hold', hold)
end
if redis.call('PTTL', KEYS[1]) < hold - now + 60000 then
	redis.call('PEXPIRE', KEYS[1], hold - now + 60000)
end
redis.call('PUBLISH', ARGV[2], ARGV[3] .. ' ' .. (hold - now))
return hold
