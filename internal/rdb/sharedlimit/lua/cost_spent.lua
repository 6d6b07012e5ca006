-- costSpentScript gives a call's reservation back and records what the
-- service said of its bucket in the answer.
--
-- KEYS[1] -> errand:{limit:<service>}:cost (CostKey)
-- ARGV[1] -> op, the kind of call
-- ARGV[2] -> the call's reservation, 0 for none
-- ARGV[3] -> 1 when the answer had the figures below, else 0
-- ARGV[4] -> the call's requested cost
-- ARGV[5] -> the bucket's size
-- ARGV[6] -> what the service says is in it now
-- ARGV[7] -> points restored a second
--
-- Returns avail after the call, as a string.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[2] ~= '0' then
	redis.call('HDEL', KEYS[1], 'r:' .. ARGV[2])
end
redis.call('HDEL', KEYS[1], 'probe')
if ARGV[3] ~= '1' then
	-- No answer: whether the service ran the call is unknown, so what was set
	-- aside stays spent; the bucket restores it in time.
	return redis.call('HGET', KEYS[1], 'avail') or ''
end
local max, rate = tonumber(ARGV[5]), tonumber(ARGV[7])
-- What other calls in flight set aside: the service may not have charged it
-- when it answered this one.
local inflight = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
	if string.sub(all[i], 1, 2) == 'r:' then
		local c, exp = string.match(all[i + 1], '^([^:]+):(%d+)$')
		if tonumber(exp) < now then
			redis.call('HDEL', KEYS[1], all[i])
		else
			inflight = inflight + tonumber(c)
		end
	end
end
-- Shopify's word, less what the calls still in flight set aside (it may not
-- have charged them yet): the bucket as it will be once they have run. Its
-- word is trusted over errand's reckoning, which only guesses the refunds;
-- an answer read after a later one overstates by what was charged between,
-- a call or two's actual cost.
local avail = tonumber(ARGV[6]) - inflight
local requested = tonumber(ARGV[4])
local costmax = math.max(requested, tonumber(redis.call('HGET', KEYS[1], 'costmax') or '0'))
redis.call('HSET', KEYS[1], 'max', ARGV[5], 'rate', ARGV[7], 'avail', tostring(avail), 'at', now,
	'cost:' .. ARGV[1], ARGV[4], 'costmax', tostring(costmax))
-- The hash outlives the time the bucket takes to fill up, and any call in flight.
local ttl = 120000
if rate > 0 then ttl = ttl + math.ceil(max * 1000 / rate) end
redis.call('PEXPIRE', KEYS[1], ttl)
return tostring(avail)
