-- completeScript records finished jobs of one queue, many at once: asynq
-- v0.26.0's markAsCompleteCmd (a job kept for its retention) and doneCmd (a
-- job deleted at once), and their Unique variants (the job's uniqueness lock
-- released). A job this worker no longer holds — no longer active (its lease
-- was lost and a recoverer took it), or leased meanwhile to another worker —
-- is left alone.
--
-- KEYS[1]      -> asynq:{<q>}:active
-- KEYS[2]      -> asynq:{<q>}:lease
-- KEYS[3]      -> asynq:{<q>}:completed
-- KEYS[4]      -> asynq:{<q>}:processed:<yyyy-mm-dd>
-- KEYS[5]      -> asynq:{<q>}:processed
-- KEYS[6]      -> errand:{<q>}:owners (OwnersKey)
-- KEYS[7..6+k] -> asynq:{<q>}:t:<id> of the k jobs, in ARGV's order
-- KEYS[7+k..]  -> the uniqueness locks (asynq:{<q>}:unique:…) held, in ARGV's order
-- ARGV[1]      -> when the day's counter expires, Unix s
-- ARGV[2]      -> now, Unix s
-- ARGV[3]      -> the worker that ran them ("" for none)
-- ARGV[4..]    -> per job four: id, retention in s (0: delete it now), the message to keep, 1 if it holds a lock (else 0)
--
-- Returns how many jobs it recorded.
local k = (#ARGV - 3) / 4
local lock = 7 + k
local done = {}
for j = 0, k - 1 do
	local a = 4 + 4 * j
	local id = ARGV[a]
	local task = KEYS[7 + j]
	if (redis.call('HGET', KEYS[6], id) or '') == ARGV[3] and redis.call('LREM', KEYS[1], 0, id) > 0 then
		local keep = tonumber(ARGV[a + 1])
		if keep > 0 then
			redis.call('ZADD', KEYS[3], tonumber(ARGV[2]) + keep, id)
			redis.call('HSET', task, 'msg', ARGV[a + 2], 'state', 'completed')
		else
			redis.call('DEL', task)
		end
		if ARGV[a + 3] == '1' and redis.call('GET', KEYS[lock]) == id then
			redis.call('DEL', KEYS[lock])
		end
		done[#done + 1] = id
	end
	if ARGV[a + 3] == '1' then lock = lock + 1 end
end
if #done > 0 then
	redis.call('ZREM', KEYS[2], unpack(done))
	redis.call('HDEL', KEYS[6], unpack(done))
	if redis.call('INCRBY', KEYS[4], #done) == #done then redis.call('EXPIREAT', KEYS[4], ARGV[1]) end
	redis.call('INCRBY', KEYS[5], #done)
end
return #done
