-- lostScript lists the jobs of one queue a recoverer may put back: those
-- whose lease ended, and those leased to a worker known dead; then it forgets
-- those workers when it found all their jobs. It moves nothing: the stored
-- messages are rewritten in Go, then recoverScript moves the jobs.
--
-- KEYS[1] -> asynq:{<q>}:lease
-- KEYS[2] -> errand:{<q>}:owners (OwnersKey)
-- KEYS[3] -> asynq:{<q>}:t: (the task hashes: this prefix and an id)
-- KEYS[4] -> errand:{<q>}:workers (WorkersKey)
-- ARGV[1] -> the latest lease end that has passed, Unix s
-- ARGV[2] -> how many jobs to list at most
-- ARGV[3..] -> the workers known dead
--
-- Returns {id, owner, msg, …}; msg is "" for a task hash that is gone.
local limit = tonumber(ARGV[2])
local out, seen = {}, {}
local function add(id)
	if seen[id] then return end
	seen[id] = true
	out[#out + 1] = id
	out[#out + 1] = redis.call('HGET', KEYS[2], id) or ''
	out[#out + 1] = redis.call('HGET', KEYS[3] .. id, 'msg') or ''
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, limit)) do add(id) end
if #ARGV > 2 then
	local dead = {}
	for i = 3, #ARGV do dead[ARGV[i]] = true end
	local owners = redis.call('HGETALL', KEYS[2])
	for i = 1, #owners, 2 do
		if #out >= 3 * limit then return out end
		if dead[owners[i + 1]] and redis.call('ZSCORE', KEYS[1], owners[i]) then add(owners[i]) end
	end
	redis.call('ZREM', KEYS[4], unpack(ARGV, 3))
end
return out
