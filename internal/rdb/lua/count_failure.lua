-- countFailure adds a failed attempt to a queue's counters as asynq v0.26.0
-- counts it (the tail of its retryCmd and archiveCmd): processed and failed,
-- for the day (the counter expires at the given instant) and in total. The
-- four keys are the day's processed and failed counters, then the totals.
local function countFailure(dayProcessed, dayFailed, processed, failed, expire)
	for _, key in ipairs({dayProcessed, dayFailed}) do
		if redis.call('INCR', key) == 1 then redis.call('EXPIREAT', key, expire) end
	end
	redis.call('INCR', processed)
	redis.call('INCR', failed)
end
