package rdb

import (
	"context"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// errand's fetcher takes every job; an asynq server still runs beside it in
// each worker, for asynq's background duties (its recoverer, forwarder,
// janitor, group aggregator, heartbeats). That server's own processor would
// take jobs too, one per round trip, and poll every queue all day. asynq
// cannot be told not to start it, so its dequeue script is answered "nothing
// pending" before it reaches Redis.

// asynqDequeue is asynq v0.26.0's dequeueCmd (internal/rdb/rdb.go), byte for
// byte: its SHA-1 is what asynq's processor sends with EVALSHA. The layout
// test proves an asynq server with the silencer takes no job; a new asynq
// version with another script fails that test.
const asynqDequeue = `
if redis.call("EXISTS", KEYS[2]) == 0 then
	local id = redis.call("RPOPLPUSH", KEYS[1], KEYS[3])
	if id then
		local key = ARGV[2] .. id
		redis.call("HSET", key, "state", "active")
		redis.call("HDEL", key, "pending_since")
		redis.call("ZADD", KEYS[4], ARGV[1], id)
		return redis.call("HGET", key, "msg")
	end
end
return nil`

var asynqDequeueSHA = redis.NewScript(asynqDequeue).Hash()

// Silencer is a go-redis hook that answers asynq's dequeue script with
// redis.Nil ("no task") without sending it. It passes every other command.
type Silencer struct {
	answered atomic.Int64
}

// SilenceAsynqDequeue adds a Silencer to c, whatever kind of client c is, and
// returns it. Only asynq's processor sends that script, so the hook changes
// nothing else c is used for; give it the client the asynq server runs on.
func SilenceAsynqDequeue(c redis.UniversalClient) *Silencer {
	s := &Silencer{}
	c.AddHook(s)
	return s
}

// Answered is how many dequeues the silencer has answered.
func (s *Silencer) Answered() int64 { return s.answered.Load() }

// DialHook implements redis.Hook.
func (s *Silencer) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessPipelineHook implements redis.Hook: asynq's processor does not
// pipeline its dequeue.
func (s *Silencer) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// ProcessHook implements redis.Hook.
func (s *Silencer) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if isAsynqDequeue(cmd.Args()) {
			s.answered.Add(1)
			cmd.SetErr(redis.Nil)
			return redis.Nil
		}
		return next(ctx, cmd)
	}
}

// isAsynqDequeue recognises asynq's dequeue script by its SHA-1 (EVALSHA) or
// its source (EVAL, go-redis's fallback when Redis does not hold it).
func isAsynqDequeue(args []any) bool {
	if len(args) < 2 {
		return false
	}
	name, _ := args[0].(string)
	body, _ := args[1].(string)
	switch name {
	case "evalsha":
		return body == asynqDequeueSHA
	case "eval":
		return body == asynqDequeue
	}
	return false
}
