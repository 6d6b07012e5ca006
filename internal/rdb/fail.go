package rdb

import (
	"context"
	_ "embed"
	"fmt"
	"time"

	"github.com/errandhq/errand/internal/rdb/taskmsg"
	"github.com/redis/go-redis/v9"
)

// luaCountFailure defines countFailure, which adds a failed attempt to a
// queue's counters as asynq v0.26.0 counts it. See lua/count_failure.lua.
//
//go:embed lua/count_failure.lua
var luaCountFailure string

// luaRelease defines release, which takes a job off the active list if the
// worker still holds it, and says whether it did. See lua/release.lua.
//
//go:embed lua/release.lua
var luaRelease string

//go:embed lua/retry.lua
var retryLua string

// retryScript puts a failed job back, into the retry set or straight onto the
// pending list: asynq v0.26.0's retryCmd. Its KEYS and ARGV are listed in
// lua/retry.lua.
var retryScript = newScript(luaCountFailure + luaRelease + retryLua)

// Retry records a failed attempt of j and puts it back to run at at (zero:
// at once). A failure that counts adds one to the job's retried count and to
// the queue's failure counters; one that does not (a throttled call) leaves
// both.
func (r *RDB) Retry(ctx context.Context, j *Fetched, errMsg string, counts bool, at time.Time) error {
	now := time.Now()
	retried, c := -1, 0
	if counts {
		retried, c = j.Msg.Retried+1, 1
	}
	q := j.Queue
	dest, score := PendingKey(q), "0"
	if !at.IsZero() {
		dest, score = RetryKey(q), DueScore(at)
	}
	keys := []string{TaskKey(q, j.ID), ActiveKey(q), LeaseKey(q), dest,
		ProcessedKey(q, now), FailedKey(q, now), ProcessedTotalKey(q), FailedTotalKey(q), OwnersKey(q)}
	msg := taskmsg.WithFailure(j.raw, retried, errMsg, now.Unix())
	err := retryScript.Run(ctx, r.c, keys, j.ID, msg, score, c, now.Add(statsTTL).Unix(), now.UnixNano(), q, j.owner).Err()
	if err != nil {
		return fmt.Errorf("retry %s on %s: %w", j.ID, q, err)
	}
	return nil
}

//go:embed lua/archive.lua
var archiveLua string

// archiveScript moves a job that failed for good to the archive (errand's
// failed list), trimmed by age only: asynq v0.26.0's archiveCmd. Its KEYS and
// ARGV are listed in lua/archive.lua.
var archiveScript = redis.NewScript(luaCountFailure + luaRelease + archiveLua)

// Archive moves j, failed for good with errMsg, to the failed list. Its
// retried count is left as it is.
func (r *RDB) Archive(ctx context.Context, j *Fetched, errMsg string) error {
	now := time.Now()
	q := j.Queue
	keys := []string{TaskKey(q, j.ID), ActiveKey(q), LeaseKey(q), ArchivedKey(q),
		ProcessedKey(q, now), FailedKey(q, now), ProcessedTotalKey(q), FailedTotalKey(q), TaskKeyPrefix(q), OwnersKey(q)}
	msg := taskmsg.WithFailure(j.raw, -1, errMsg, now.Unix())
	err := archiveScript.Run(ctx, r.c, keys, j.ID, msg, now.Unix(), now.Add(-archivedFor).Unix(), now.Add(statsTTL).Unix(), j.owner).Err()
	if err != nil {
		return fmt.Errorf("archive %s on %s: %w", j.ID, q, err)
	}
	return nil
}

//go:embed lua/requeue.lua
var requeueLua string

// requeueScript puts a job interrupted by shutdown back at the head of its
// pending list: asynq v0.26.0's requeueCmd. Its KEYS and ARGV are listed in
// lua/requeue.lua.
var requeueScript = newScript(luaRelease + requeueLua)

// Requeue puts j back on its queue, to run next; the attempt does not count.
func (r *RDB) Requeue(ctx context.Context, j *Fetched) error {
	q := j.Queue
	err := requeueScript.Run(ctx, r.c, []string{ActiveKey(q), LeaseKey(q), PendingKey(q), TaskKey(q, j.ID), OwnersKey(q)}, j.ID, q, j.owner).Err()
	if err != nil {
		return fmt.Errorf("requeue %s on %s: %w", j.ID, q, err)
	}
	return nil
}
