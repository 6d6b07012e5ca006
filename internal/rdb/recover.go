package rdb

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// LeaseLost is the error recorded on a job whose worker was lost mid-job
// (asynq's ErrLeaseExpired text, so asynq's tools show the same).
const LeaseLost = "asynq: task lease expired"

// lostScript lists the jobs of one queue a recoverer may put back: those
// whose lease ended, and those leased to a worker known dead; then it forgets
// those workers when it found all their jobs. It moves nothing: the stored
// messages are rewritten in Go, then recoverScript moves the jobs.
//
// KEYS[1] -> asynq:{<q>}:lease
// KEYS[2] -> errand:{<q>}:owners (OwnersKey)
// KEYS[3] -> asynq:{<q>}:t: (the task hashes: this prefix and an id)
// KEYS[4] -> errand:{<q>}:workers (WorkersKey)
// ARGV[1] -> the latest lease end that has passed, Unix s
// ARGV[2] -> how many jobs to list at most
// ARGV[3..] -> the workers known dead
//
// Returns {id, owner, msg, …}; msg is "" for a task hash that is gone.
var lostScript = redis.NewScript(`
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
`)

// recoverScript puts back lost jobs of one queue, each as a used attempt to
// run again at once with its id: asynq v0.26.0's recoverer (its retryCmd with
// the forwarder's move folded in), for many jobs at once. A job is moved only
// if it is still leased to the owner lostScript saw and that lease has ended
// or that owner is dead: a worker that renewed meanwhile keeps its job.
//
// KEYS[1] -> asynq:{<q>}:active
// KEYS[2] -> asynq:{<q>}:lease
// KEYS[3] -> errand:{<q>}:owners (OwnersKey)
// KEYS[4] -> asynq:{<q>}:pending
// KEYS[5] -> asynq:{<q>}:processed:<yyyy-mm-dd>
// KEYS[6] -> asynq:{<q>}:failed:<yyyy-mm-dd>
// KEYS[7] -> asynq:{<q>}:processed
// KEYS[8] -> asynq:{<q>}:failed
// KEYS[9] -> asynq:{<q>}:t: (the task hashes: this prefix and an id)
// ARGV[1] -> the latest lease end that has passed, Unix s
// ARGV[2] -> now, Unix ns (pending_since)
// ARGV[3] -> when the day's counters expire, Unix s
// ARGV[4] -> the queue's name, for the wake-up
// ARGV[5] -> d, how many workers are known dead
// ARGV[6..5+d] -> those workers
// ARGV[6+d..] -> per job three: id, its owner as listed, the updated message
//
// Returns how many jobs it put back.
var recoverScript = newScript(luaCountFailure + `
local d = tonumber(ARGV[5])
local dead = {}
for i = 6, 5 + d do dead[ARGV[i]] = true end
local n = 0
for a = 6 + d, #ARGV, 3 do
	local id, owner = ARGV[a], ARGV[a + 1]
	local ends = redis.call('ZSCORE', KEYS[2], id)
	if ends and (redis.call('HGET', KEYS[3], id) or '') == owner
		and (tonumber(ends) <= tonumber(ARGV[1]) or (owner ~= '' and dead[owner]))
		and redis.call('LREM', KEYS[1], 0, id) > 0 then
		redis.call('ZREM', KEYS[2], id)
		redis.call('HDEL', KEYS[3], id)
		redis.call('LPUSH', KEYS[4], id)
		redis.call('HSET', KEYS[9] .. id, 'msg', ARGV[a + 2], 'state', 'pending', 'pending_since', ARGV[2])
		countFailure(KEYS[5], KEYS[6], KEYS[7], KEYS[8], ARGV[3])
		n = n + 1
	end
end
if n > 0 then redis.call('PUBLISH', WAKE, 'job:' .. ARGV[4]) end
return n
`)

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
			msg, err := decodeMessage(raw)
			if len(raw) == 0 || err != nil {
				continue // gone meanwhile, or not errand's to rewrite: asynq's recoverer takes it
			}
			args = append(args, res[k], res[k+1], withFailure(raw, msg.Retried+1, LeaseLost, stamp.Unix()))
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
