-- extendScript extends the leases of the jobs of one queue that a worker
-- still holds (asynq v0.26.0's ExtendLease, a ZADD XX, with the owner
-- checked), and records the worker as seen.
--
-- KEYS[1] -> asynq:{<q>}:lease
-- KEYS[2] -> errand:{<q>}:owners (OwnersKey)
-- KEYS[3] -> errand:{<q>}:workers (WorkersKey)
-- ARGV[1] -> the new lease end, Unix s
-- ARGV[2] -> now, Unix s
-- ARGV[3] -> the worker ("" for none)
-- ARGV[4..] -> the job ids
--
-- Returns how many lease ends it moved.
local n = 0
for i = 4, #ARGV do
	local id = ARGV[i]
	if (redis.call('HGET', KEYS[2], id) or '') == ARGV[3] then
		n = n + redis.call('ZADD', KEYS[1], 'XX', 'CH', ARGV[1], id)
	end
end
if ARGV[3] ~= '' then redis.call('ZADD', KEYS[3], ARGV[2], ARGV[3]) end
return n
