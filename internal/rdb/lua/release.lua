-- release takes job id off the active list and forgets its owner if worker
-- still holds it — the job is active, leased in worker's name ("" for a job
-- leased in no one's) — and says whether it did. A worker whose lease was lost
-- (a Redis blip kept it from renewing) and whose job a recoverer put back, or
-- another worker took meanwhile, must not record an outcome for it.
local function release(active, owners, id, worker)
	if (redis.call('HGET', owners, id) or '') ~= worker then return false end
	if redis.call('LREM', active, 0, id) == 0 then return false end
	redis.call('HDEL', owners, id)
	return true
end
