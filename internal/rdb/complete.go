package rdb

import (
	"context"
	_ "embed"
	"fmt"
	"time"

	"github.com/errandhq/errand/internal/rdb/taskmsg"
	"github.com/redis/go-redis/v9"
)

//go:embed lua/complete.lua
var completeLua string

// completeScript records finished jobs of one queue, many at once: asynq
// v0.26.0's markAsCompleteCmd and doneCmd, and their Unique variants. Its KEYS
// and ARGV are listed in lua/complete.lua.
var completeScript = redis.NewScript(completeLua)

// Complete records jobs that succeeded, in one round trip: one script per
// queue. Jobs with a retention are kept that long as completed.
func (r *RDB) Complete(ctx context.Context, jobs []*Fetched) error {
	now := time.Now()
	byQueue := map[string][]*Fetched{}
	var order []string
	// One script per queue and worker: in one worker's batches, one per queue.
	for _, j := range jobs {
		g := j.Queue + "\x00" + j.owner
		if _, seen := byQueue[g]; !seen {
			order = append(order, g)
		}
		byQueue[g] = append(byQueue[g], j)
	}
	calls := make([]*evalCall, 0, len(order))
	for _, g := range order {
		js := byQueue[g]
		q := js[0].Queue
		keys := make([]string, 6, 6+len(js))
		keys[0], keys[1], keys[2], keys[3], keys[4], keys[5] = ActiveKey(q), LeaseKey(q), CompletedKey(q), ProcessedKey(q, now), ProcessedTotalKey(q), OwnersKey(q)
		args := make([]any, 0, 3+4*len(js))
		args = append(args, now.Add(statsTTL).Unix(), now.Unix(), js[0].owner)
		var locks []string
		for _, j := range js {
			keys = append(keys, TaskKey(q, j.ID))
			var keep []byte
			if j.Msg.Retention > 0 {
				keep = taskmsg.WithCompleted(j.raw, now.Unix())
			}
			hasLock := 0
			if j.Msg.UniqueKey != "" {
				hasLock = 1
				locks = append(locks, j.Msg.UniqueKey)
			}
			args = append(args, j.ID, j.Msg.Retention, keep, hasLock)
		}
		keys = append(keys, locks...)
		calls = append(calls, &evalCall{script: completeScript, keys: keys, args: args})
	}
	r.runPipelined(ctx, calls, nil)
	for i, c := range calls {
		if err := c.cmd.Err(); err != nil {
			return fmt.Errorf("complete jobs of %s: %w", byQueue[order[i]][0].Queue, err)
		}
	}
	return nil
}
