-- forwardScript moves the jobs of one queue whose due instant has come from
-- its scheduled and retry sets to its pending list — or, for a job of a
-- group, to its group, as asynq does: asynq v0.26.0's forwardCmd, for both
-- sets at once, at the millisecond instead of the whole second. It looks at
-- most ARGV[2] jobs ahead in each set.
--
-- KEYS[1] -> asynq:{<q>}:scheduled
-- KEYS[2] -> asynq:{<q>}:retry
-- KEYS[3] -> asynq:{<q>}:pending
-- KEYS[4] -> asynq:{<q>}:t: (the task hashes: this prefix and an id)
-- KEYS[5] -> asynq:{<q>}:g: (the group sets: this prefix and a group)
-- ARGV[1] -> now, as a score (DueScore's form)
-- ARGV[2] -> how many jobs to look at per set
-- ARGV[3] -> now, Unix ns (pending_since)
-- ARGV[4] -> the queue's name, for the wake-up
--
-- Returns {moved, next}: next is the earliest score still waiting, "" if none.
--
-- WAKE is the wake-up channel, named by newScript (rdb.go).
local moved = 0
local next = nil
local limit = tonumber(ARGV[2])
local now = tonumber(ARGV[1])
for s = 1, 2 do
	local head = redis.call('ZRANGE', KEYS[s], 0, limit - 1, 'WITHSCORES')
	for j = 1, #head, 2 do
		local id, score = head[j], tonumber(head[j + 1])
		if score > now then
			if next == nil or score < next then next = score end
			break
		end
		local task = KEYS[4] .. id
		local group = redis.call('HGET', task, 'group')
		redis.call('ZREM', KEYS[s], id)
		if group and group ~= '' then
			redis.call('ZADD', KEYS[5] .. group, ARGV[1], id)
			redis.call('HSET', task, 'state', 'aggregating')
		else
			redis.call('LPUSH', KEYS[3], id)
			redis.call('HSET', task, 'state', 'pending', 'pending_since', ARGV[3])
		end
		moved = moved + 1
	end
end
if moved > 0 then redis.call('PUBLISH', WAKE, 'job:' .. ARGV[4]) end
if next == nil then return {moved, ''} end
return {moved, string.format('%.3f', next)}
