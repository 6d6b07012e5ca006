// Package rdb is the one place that knows asynq's private Redis layout (the
// release named by AsynqVersion): its key names (keys.go), its stored task
// message (read and written by its sub-package taskmsg), the Lua scripts errand
// runs on that layout instead of asynq's (each in lua/, embedded beside its Go
// wrapper), and the Inspector that reads it back for the API and the CLI, with
// the one mapping of asynq's task states to errand's.
//
// errand writes and moves jobs through the same lists, sets and task hashes as
// asynq, in the same states, so asynq's own background duties (its recoverer,
// forwarder, janitor, group aggregator), its Inspector and the dashboard work
// on errand's jobs as on any other. Each script comments which asynq script it
// mirrors and lists its KEYS and ARGV at its top. Every key a script touches is
// a KEY it is given, or is built inside it from a KEY prefix it is given (a
// task hash named by an id the script pops): all of one queue, in one hash
// slot, so the scripts run on Redis Cluster. No script touches two queues: work
// on several queues is one script per queue, sent in one pipeline.
//
// The API takes plain values (ids, types, queues, payload bytes, instants), so
// this package knows nothing of errand's job types.
package rdb

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Numbers of asynq's that errand keeps, so asynq's tools treat errand's jobs
// as their own.
const (
	// LeaseDuration is how long a fetched job is leased (asynq's
	// rdb.LeaseDuration); a worker extends the leases of its running jobs
	// well before they end (every 3 s). errand's recoverer (Recover)
	// puts back a job whose lease ended within seconds (or at once, when its
	// worker is known dead); asynq's, a job whose
	// lease ended more than 30 s ago: its worker is taken to be lost. Shorter
	// than asynq's 30 s so that a lost worker's jobs run again in seconds.
	LeaseDuration = 10 * time.Second
	// statsTTL is how long a day's counters are kept (asynq's statsTTL).
	statsTTL = 90 * 24 * time.Hour
	// The failed list (asynq's archive) is trimmed by age as asynq trims it
	// (archivedExpirationInDays), not by size: the database's list keeps all.
	archivedFor = 90 * 24 * time.Hour
)

// ErrDuplicate is returned when a job with the same id is already queued (or
// kept as completed or failed).
var ErrDuplicate = errors.New("job already queued")

// RDB runs errand's scripts over one Redis client.
type RDB struct {
	c     redis.UniversalClient
	known sync.Map // queues this process has added to AllQueuesKey
	// owner is the worker in whose name Fetch leases jobs ("" for none,
	// see AsWorker).
	owner string
}

// New returns an RDB over c, which it does not close.
func New(c redis.UniversalClient) *RDB { return &RDB{c: c} }

// Client is the Redis client the RDB runs on.
func (r *RDB) Client() redis.UniversalClient { return r.c }

// newScript makes a script that may wake workers: it names the wake-up
// channel WAKE, from the Go constant, instead of writing it out.
func newScript(src string) *redis.Script {
	return redis.NewScript("local WAKE = '" + WakeChannel + "'\n" + src)
}

// evalCall is one script run in a pipeline.
type evalCall struct {
	script *redis.Script
	keys   []string
	args   []any
	cmd    *redis.Cmd
}

// runPipelined sends the calls, after the commands extra adds, in one round
// trip. A script Redis does not hold (a restarted or failed-over server, or a
// Cluster node that never ran it) answers NOSCRIPT: only those calls are sent
// again, with the script's source, so no call runs twice. The caller reads
// each call's cmd (and its own commands) for the outcome. after, if given,
// adds commands at the end of each round trip (on the same connection).
func (r *RDB) runPipelined(ctx context.Context, calls []*evalCall, extra func(redis.Pipeliner), after ...func(redis.Pipeliner)) {
	_, _ = r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		if extra != nil {
			extra(p)
		}
		for _, c := range calls {
			c.cmd = c.script.EvalSha(ctx, p, c.keys, c.args...)
		}
		for _, f := range after {
			f(p)
		}
		return nil
	})
	var again []*evalCall
	for _, c := range calls {
		if err := c.cmd.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			again = append(again, c)
		}
	}
	if len(again) == 0 {
		return
	}
	_, _ = r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, c := range again {
			c.cmd = c.script.Eval(ctx, p, c.keys, c.args...)
		}
		for _, f := range after {
			f(p)
		}
		return nil
	})
}
