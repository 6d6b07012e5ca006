package rdb

import (
	"context"
	_ "embed"
	"fmt"
	"time"

	"github.com/errandhq/errand/internal/rdb/taskmsg"
	"github.com/redis/go-redis/v9"
)

// Message is a job's stored task message, as taskmsg reads it.
type Message = taskmsg.Message

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

//go:embed lua/fetch.lua
var fetchLua string

// fetchScript leases up to ARGV[2] jobs of one queue: asynq v0.26.0's
// dequeueCmd, for many jobs at once. Its KEYS and ARGV are listed in
// lua/fetch.lua.
var fetchScript = redis.NewScript(fetchLua)

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
		j.Msg, j.Bad = taskmsg.Decode(j.raw)
		if j.Bad != nil {
			j.Msg = Message{}
		}
		jobs = append(jobs, j)
	}
	return jobs, int(n), false, nil
}
