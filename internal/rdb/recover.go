package rdb

import (
	"context"
	_ "embed"
	"fmt"
	"time"

	"github.com/errandhq/errand/internal/rdb/taskmsg"
	"github.com/redis/go-redis/v9"
)

// LeaseLost is the error recorded on a job whose worker was lost mid-job
// (asynq's ErrLeaseExpired text, so asynq's tools show the same).
const LeaseLost = "asynq: task lease expired"

//go:embed lua/lost.lua
var lostLua string

// lostScript lists the jobs of one queue a recoverer may put back, and forgets
// the dead workers whose jobs it found all of. Its KEYS and ARGV are listed in
// lua/lost.lua.
var lostScript = redis.NewScript(lostLua)

//go:embed lua/recover.lua
var recoverLua string

// recoverScript puts back lost jobs of one queue, each as a used attempt to run
// again at once: asynq v0.26.0's recoverer, for many jobs at once. Its KEYS and
// ARGV are listed in lua/recover.lua.
var recoverScript = newScript(luaCountFailure + recoverLua)

// Recover puts back the jobs of queues whose worker was lost — their lease
// ended before now (a living worker extends its leases well before they
// end), or their worker is one dead says is dead (nil: none known) — up to
// limit per queue, each as a used attempt run again at once with the same
// id: asynq v0.26.0's recoverer (ListLeaseExpired, then Retry), without its
// 30 s grace. The attempt counts, so a job that keeps killing its worker ends
// when its attempts are used: the worker that fetches it next refuses it and
// fails it for good, with its escalation.
//
// dead is asked only of the workers that held leases on a queue; it must
// answer true only for a worker that is certainly gone. Three round trips,
// whatever the number of queues: the workers, the lost jobs, the moves (one
// script per queue that has any). It returns how many jobs it put back per
// queue.
func (r *RDB) Recover(ctx context.Context, queues []string, now time.Time, dead func(worker string) bool, limit int) (map[string]int, error) {
	var first error
	fail := func(err error) {
		if first == nil {
			first = err
		}
	}
	// The workers known dead, per queue.
	deadOn := make(map[string][]string, len(queues))
	if dead != nil {
		seen := map[string]bool{}
		workers := make([]*redis.StringSliceCmd, len(queues))
		_, _ = r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, q := range queues {
				workers[i] = p.ZRange(ctx, WorkersKey(q), 0, -1)
			}
			return nil
		})
		for i, q := range queues {
			ws, err := workers[i].Result()
			if err != nil {
				fail(fmt.Errorf("list workers of %s: %w", q, err))
				continue
			}
			for _, w := range ws {
				isDead, known := seen[w]
				if !known {
					isDead = w != "" && dead(w)
					seen[w] = isDead
				}
				if isDead {
					deadOn[q] = append(deadOn[q], w)
				}
			}
		}
	}
	cutoff := now.Unix() - 1
	lists := make([]*evalCall, len(queues))
	for i, q := range queues {
		args := []any{cutoff, limit}
		for _, w := range deadOn[q] {
			args = append(args, w)
		}
		lists[i] = &evalCall{script: lostScript, keys: []string{LeaseKey(q), OwnersKey(q), TaskKeyPrefix(q), WorkersKey(q)}, args: args}
	}
	r.runPipelined(ctx, lists, nil)
	var moves []*evalCall
	var moveQ []string
	stamp := time.Now()
	for i, q := range queues {
		res, err := lists[i].cmd.StringSlice()
		if err != nil {
			fail(fmt.Errorf("list lost jobs of %s: %w", q, err))
			continue
		}
		args := []any{cutoff, stamp.UnixNano(), stamp.Add(statsTTL).Unix(), q, len(deadOn[q])}
		for _, w := range deadOn[q] {
			args = append(args, w)
		}
		jobs := 0
		for k := 0; k+2 < len(res); k += 3 {
			raw := []byte(res[k+2])
			msg, err := taskmsg.Decode(raw)
			if len(raw) == 0 || err != nil {
				continue // gone meanwhile, or not errand's to rewrite: asynq's recoverer takes it
			}
			args = append(args, res[k], res[k+1], taskmsg.WithFailure(raw, msg.Retried+1, LeaseLost, stamp.Unix()))
			jobs++
		}
		if jobs == 0 {
			continue
		}
		moves = append(moves, &evalCall{script: recoverScript, args: args, keys: []string{ActiveKey(q), LeaseKey(q), OwnersKey(q), PendingKey(q),
			ProcessedKey(q, stamp), FailedKey(q, stamp), ProcessedTotalKey(q), FailedTotalKey(q), TaskKeyPrefix(q)}})
		moveQ = append(moveQ, q)
	}
	out := map[string]int{}
	if len(moves) == 0 {
		return out, first
	}
	r.runPipelined(ctx, moves, nil)
	for i, c := range moves {
		n, err := c.cmd.Int()
		if err != nil {
			fail(fmt.Errorf("recover lost jobs of %s: %w", moveQ[i], err))
			continue
		}
		if n > 0 {
			out[moveQ[i]] = n
		}
	}
	return out, first
}
