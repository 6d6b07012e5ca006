package rdb

import (
	"context"
	_ "embed"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Leases name their worker. A worker's fetches record, per queue, which
// worker holds each job (OwnersKey) and when the worker was last seen
// (WorkersKey); its lease renewals extend only the jobs it still holds and
// say it is alive. So:
//
//   - a job is recorded done, failed or put back only by the worker that
//     holds it: one whose lease was lost (a Redis blip kept it from renewing)
//     and whose job was put back and perhaps taken by another worker cannot
//     then record an outcome for it;
//   - a recoverer that knows a worker to be dead (on its own host: the
//     process is gone, see internal/workerid) puts back that worker's jobs at
//     once instead of waiting for their leases to end (Recover).
//
// Both keys are errand's own, in the queue's hash slot; asynq ignores them.

// workerForgotten is how long a worker stays in WorkersKey unseen: long past
// its leases' end, by when a recoverer has put back whatever it held.
const workerForgotten = 3 * LeaseDuration

// AsWorker returns an RDB over r's client whose fetches lease jobs in
// worker's name (a name no other process ever uses; see internal/workerid).
// The RDB of New leases in no one's name.
func (r *RDB) AsWorker(worker string) *RDB { return &RDB{c: r.c, owner: worker} }

//go:embed lua/extend.lua
var extendLua string

// extendScript extends the leases of the jobs of one queue that a worker still
// holds (asynq v0.26.0's ExtendLease, with the owner checked). Its KEYS and
// ARGV are listed in lua/extend.lua.
var extendScript = redis.NewScript(extendLua)

// ExtendLeases moves the lease end of running jobs (ids by queue) to until,
// in one round trip, one script per queue: only jobs still leased to r's
// worker (one whose lease was lost stays lost).
func (r *RDB) ExtendLeases(ctx context.Context, byQueue map[string][]string, until time.Time) error {
	now := time.Now().Unix()
	calls := make([]*evalCall, 0, len(byQueue))
	var order []string
	for q, ids := range byQueue {
		args := make([]any, 0, 3+len(ids))
		args = append(args, until.Unix(), now, r.owner)
		for _, id := range ids {
			args = append(args, id)
		}
		calls = append(calls, &evalCall{script: extendScript, keys: []string{LeaseKey(q), OwnersKey(q), WorkersKey(q)}, args: args})
		order = append(order, q)
	}
	r.runPipelined(ctx, calls, nil)
	for i, c := range calls {
		if err := c.cmd.Err(); err != nil {
			return fmt.Errorf("extend leases on %s: %w", order[i], err)
		}
	}
	return nil
}
