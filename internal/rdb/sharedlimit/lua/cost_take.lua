-- costTakeScript sets aside the expected cost of a call of kind op when the
-- bucket covers it.
--
-- KEYS[1] -> errand:{limit:<service>}:cost (CostKey)
-- ARGV[1] -> op, the kind of call
-- ARGV[2] -> how long a reservation is counted, ms
-- ARGV[3] -> how long a probe is counted, ms
-- ARGV[4] -> how long calls wait for a probe's answer, or for the answers
-- of calls in flight, ms
--
-- Returns {wait ms, reservation}: wait 0 and the reservation's number (0
-- for the probe, when nothing is known of the bucket yet: it sets aside
-- nothing), else how long until the bucket covers the call.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local max = tonumber(redis.call('HGET', KEYS[1], 'max'))
if not max then
	local probe = tonumber(redis.call('HGET', KEYS[1], 'probe') or '0')
	if probe > now then return {tonumber(ARGV[4]), 0} end
	redis.call('HSET', KEYS[1], 'probe', now + tonumber(ARGV[3]))
	redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) + 60000)
	return {0, 0}
end
local rate = tonumber(redis.call('HGET', KEYS[1], 'rate') or '0')
local cost = tonumber(redis.call('HGET', KEYS[1], 'cost:' .. ARGV[1]) or redis.call('HGET', KEYS[1], 'costmax') or '0')
-- A call costing more than the bucket holds is refused by the service
-- itself, for good; waiting would not help.
cost = math.min(cost, max)
local avail = tonumber(redis.call('HGET', KEYS[1], 'avail') or max)
local at = tonumber(redis.call('HGET', KEYS[1], 'at') or now)
if now > at then avail = math.min(max, avail + (now - at) * rate / 1000) end
if avail < cost then
	redis.call('HSET', KEYS[1], 'avail', tostring(avail), 'at', now)
	local wait = 1000
	if rate > 0 then wait = math.ceil((cost - avail) * 1000 / rate) end
	-- Calls in flight give back most of what they set aside when answered
	-- (a query's actual cost is often far below its requested one): ask
	-- again soon rather than wait for the bucket to refill.
	local all = redis.call('HGETALL', KEYS[1])
	for i = 1, #all, 2 do
		if string.sub(all[i], 1, 2) == 'r:' and tonumber(string.match(all[i + 1], ':(%d+)$')) > now then
			return {math.min(wait, tonumber(ARGV[4])), 0}
		end
	end
	return {wait, 0}
end
local id = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('HSET', KEYS[1], 'avail', tostring(avail - cost), 'at', now, 'r:' .. id, tostring(cost) .. ':' .. (now + tonumber(ARGV[2])))
return {0, id}
