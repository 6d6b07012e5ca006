-- limitTakeScript takes a token from service's bucket unless the service is
-- held.
--
-- KEYS[1] -> errand:{limit:<service>}:bucket (LimitKey)
-- ARGV[1] -> ms per token (rate duration / rate count), a float; 0 = no bucket,
-- only the hold is checked
-- ARGV[2] -> burst, the bucket's size
-- ARGV[3] -> ms the caller would wait in place for a token: when the bucket is
-- empty but the token after those already promised comes within it, that
-- token is promised to the caller (the bucket goes below zero, so later
-- callers wait behind it); 0 never promises
-- ARGV[4] -> how many tokens the caller would take at once (at least 1); it
-- gets up to half of what the bucket holds, at least 1
--
-- Returns {wait ms, held, promised, taken}: wait 0 when tokens were taken
-- (taken of them); else how long until one will be there (held 0) or the
-- hold ends (held 1), and promised 1 when the caller has that token and calls
-- after wait.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local hold = tonumber(redis.call('HGET', KEYS[1], 'hold') or '0')
if hold > now then return {hold - now, 1, 0, 0} end
local per = tonumber(ARGV[1])
if per <= 0 then return {0, 0, 0, 1} end
local burst = tonumber(ARGV[2])
local tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens') or ARGV[2])
local at = tonumber(redis.call('HGET', KEYS[1], 'at') or now)
if now > at then tokens = math.min(burst, tokens + (now - at) / per) end
local wait, promised, taken = 0, 0, 0
if tokens >= 1 then
	-- Never more than half of what is left: a worker's tokens taken ahead
	-- must not starve the others when the bucket runs low.
	taken = math.min(tonumber(ARGV[4]), math.max(1, math.floor(tokens / 2)))
	tokens = tokens - taken
else
	wait = math.ceil((1 - tokens) * per)
	if wait <= tonumber(ARGV[3]) then
		tokens = tokens - 1
		promised = 1
	end
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
-- The hash outlives the time the bucket takes to fill up again.
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * per) + 60000)
return {wait, 0, promised, taken}
