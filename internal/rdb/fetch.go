package rdb

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Fetched is a job taken off its queue's pending list, leased to this worker.
type Fetched struct {
	Queue, ID string
	Msg       Message
	// Bad says why the stored message could not be read (a task hash gone,
	// or written by something that is not asynq); Msg is empty then. Such a
	// job cannot run: Archive it, so that it shows instead of vanishing.
	Bad error
	raw []byte // the stored message, which completion and failures rewrite
	// owner is the worker that leased it (RDB.AsWorker): completion and
	// failures record the job only while that worker still holds it.
	owner string
}

// Take asks for up to N jobs of Queue; with N = 0 it only asks how many are
// pending there.
type Take struct {
	Queue string
	N     int
}

// Taken is what one Take got.
type Taken struct {
	Queue string
	Jobs  []*Fetched
	// Left is how many jobs are pending on the queue after the take; 0 on a
	// paused queue.
	Left   int
	Paused bool // known only for N > 0
	Err    error
}

// fetchScript leases up to ARGV[2] jobs of one queue: asynq v0.26.0's
// dequeueCmd (which takes one job per round trip), for many jobs at once.
// The oldest jobs are at the list's tail: they are taken from there in three
// commands, not one RPOPLPUSH per job, and handed out oldest first.
//
// KEYS[1] -> asynq:{<q>}:pending
// KEYS[2] -> asynq:{<q>}:paused
// KEYS[3] -> asynq:{<q>}:active
// KEYS[4] -> asynq:{<q>}:lease
// KEYS[5] -> asynq:{<q>}:t: (the task hashes: this prefix and an id)
// KEYS[6] -> errand:{<q>}:owners (OwnersKey)
// KEYS[7] -> errand:{<q>}:workers (WorkersKey)
// ARGV[1] -> lease end, Unix s
// ARGV[2] -> how many jobs to take at most
// ARGV[3] -> the worker taking them ("" for none: no owner is recorded)
// ARGV[4] -> now, Unix s
// ARGV[5] -> after how many seconds unseen a worker leaves KEYS[7]
//
// Returns {left, id, msg, id, msg, …}: left is the pending list's length
// after, -1 when the queue is paused (nothing taken); msg is "" for a task
// hash that is gone.
var fetchScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 1 then return {-1} end
local out = {0}
local ids = redis.call('LRANGE', KEYS[1], -tonumber(ARGV[2]), -1)
if #ids > 0 then
	redis.call('LTRIM', KEYS[1], 0, -#ids - 1)
	redis.call('LPUSH', KEYS[3], unpack(ids))
	local lease = {}
	for j = #ids, 1, -1 do
		local id = ids[j]
		local key = KEYS[5] .. id
		redis.call('HSET', key, 'state', 'active')
		redis.call('HDEL', key, 'pending_since')
		lease[#lease + 1] = ARGV[1]
		lease[#lease + 1] = id
		out[#out + 1] = id
		out[#out + 1] = redis.call('HGET', key, 'msg') or ''
	end
	redis.call('ZADD', KEYS[4], unpack(lease))
	if ARGV[3] ~= '' then
		local own = {}
		for _, id in ipairs(ids) do
			own[#own + 1] = id
			own[#own + 1] = ARGV[3]
		end
		redis.call('HSET', KEYS[6], unpack(own))
		redis.call('ZADD', KEYS[7], ARGV[4], ARGV[3])
		-- Workers not seen for a while hold nothing any more.
		redis.call('ZREMRANGEBYSCORE', KEYS[7], '-inf', tonumber(ARGV[4]) - ARGV[5])
	else
		redis.call('HDEL', KEYS[6], unpack(ids))
	end
end
out[1] = redis.call('LLEN', KEYS[1])
return out
`)

// Fetch makes the takes in one round trip: one script per queue that is to
// give jobs, one LLEN per queue only asked its length. The jobs are leased
// until leaseEnd, in the name of r's worker (AsWorker). A take that failed carries its error, and Fetch returns
// the first; the jobs of the others are leased and must be run all the same.
func (r *RDB) Fetch(ctx context.Context, takes []Take, leaseEnd time.Time) ([]Taken, error) {
	out := make([]Taken, len(takes))
	var calls []*evalCall
	lens := make([]*redis.IntCmd, len(takes))
	for i, t := range takes {
		out[i].Queue = t.Queue
		if t.N > 0 {
			q := t.Queue
			calls = append(calls, &evalCall{script: fetchScript,
				keys: []string{PendingKey(q), PausedKey(q), ActiveKey(q), LeaseKey(q), TaskKeyPrefix(q), OwnersKey(q), WorkersKey(q)},
				args: []any{leaseEnd.Unix(), t.N, r.owner, time.Now().Unix(), int64(workerForgotten / time.Second)}})
		}
	}
	extra := func(p redis.Pipeliner) {
		for i, t := range takes {
			if t.N == 0 {
				lens[i] = p.LLen(ctx, PendingKey(t.Queue))
			}
		}
	}
	r.runPipelined(ctx, calls, extra)
	var first error
	next := 0
	for i, t := range takes {
		if t.N == 0 {
			n, err := lens[i].Result()
			out[i].Left, out[i].Err = int(n), err
		} else {
			out[i].Jobs, out[i].Left, out[i].Paused, out[i].Err = readFetched(t.Queue, r.owner, calls[next].cmd)
			next++
		}
		if out[i].Err != nil && first == nil {
			first = fmt.Errorf("fetch from %s: %w", t.Queue, out[i].Err)
		}
	}
	return out, first
}

func readFetched(q, owner string, cmd *redis.Cmd) (jobs []*Fetched, left int, paused bool, err error) {
	res, err := cmd.Slice()
	if err != nil {
		return nil, 0, false, err
	}
	if len(res) == 0 {
		return nil, 0, false, fmt.Errorf("fetch script answered nothing")
	}
	n, _ := res[0].(int64)
	if n < 0 {
		return nil, 0, true, nil
	}
	jobs = make([]*Fetched, 0, (len(res)-1)/2)
	for i := 1; i+1 < len(res); i += 2 {
		id, _ := res[i].(string)
		raw, _ := res[i+1].(string)
		j := &Fetched{Queue: q, ID: id, raw: []byte(raw), owner: owner}
		j.Msg, j.Bad = decodeMessage(j.raw)
		if j.Bad != nil {
			j.Msg = Message{}
		}
		jobs = append(jobs, j)
	}
	return jobs, int(n), false, nil
}
