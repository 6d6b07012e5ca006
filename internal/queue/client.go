package queue

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/job"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// Headers errand keeps on tasks.
const (
	headerQueued   = "errand-queued-ms"
	headerRetryOf  = "errand-retry-of"
	headerCallback = "errand-callback"
	maxRetrySentry = 1 << 20 // errand counts attempts itself; see policy.go
)

// RedisOptions turns the [redis] settings into go-redis options.
func RedisOptions(c config.Redis) *redis.Options {
	o := &redis.Options{Addr: c.Addr, Username: c.Username, Password: c.Password, DB: c.DB}
	o.TLSConfig, _ = c.RedisTLS() // checked by config.Validate
	return o
}

// ConnOpt returns the asynq connection option for the [redis] settings.
func ConnOpt(c config.Redis) asynq.RedisClientOpt {
	o := asynq.RedisClientOpt{Addr: c.Addr, Username: c.Username, Password: c.Password, DB: c.DB}
	o.TLSConfig, _ = c.RedisTLS() // checked by config.Validate
	return o
}

// Client queues jobs: think-queue's Queue::push and Queue::later.
//
// A job is written in asynq's layout (the task hash, the queue's pending list
// or scheduled set, the set of queues), so asynq's tools and the dashboard see
// it, by one script that also wakes idle workers: one round trip per job.
type Client struct {
	reg   *job.Registry
	rdb   redis.UniversalClient
	known sync.Map // queues already in asynq's set of queues
}

// NewClient returns a client over rdb.
func NewClient(reg *job.Registry, rdb redis.UniversalClient) *Client {
	return &Client{reg: reg, rdb: rdb}
}

// ErrDuplicate means a job with the same ID is already queued (or kept).
var ErrDuplicate = errors.New("job already queued")

// Push queues a typed job now (or after its type's default delay).
func (c *Client) Push(ctx context.Context, args job.Args, opts ...job.Option) (job.Envelope, error) {
	e, err := c.reg.Prepare(args, opts...)
	if err != nil {
		return e, err
	}
	return e, c.Enqueue(ctx, e)
}

// Later queues a typed job to run no earlier than delay from now.
func (c *Client) Later(ctx context.Context, delay time.Duration, args job.Args, opts ...job.Option) (job.Envelope, error) {
	return c.Push(ctx, args, append(opts, job.Delay(delay))...)
}

// enqueueJob writes a job. KEYS: its task hash, and its queue's pending list
// (queued now) or scheduled set (delayed). ARGV: id, message, now (ns), due
// (s with fraction; "0" = now), the queue's name when it is to be added to
// asynq's set of queues (else ""). A pending job wakes idle workers (when its
// list was empty); a delayed
// one goes to the scheduled set at its exact due instant and wakes the due
// forwarders (asynq's own scan only moves it at the whole second after, never
// before). It answers 0 when the id is taken.
var enqueueJob = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if ARGV[5] ~= '' then redis.call('SADD', 'asynq:queues', ARGV[5]) end
if ARGV[4] == '0' then
	redis.call('HSET', KEYS[1], 'msg', ARGV[2], 'state', 'pending', 'pending_since', ARGV[3])
	-- Only a list that was empty can have idle workers waiting on it: a
	-- worker sleeps only after finding its lists empty, and comes back by
	-- itself while there is more than it could take.
	if redis.call('LPUSH', KEYS[2], ARGV[1]) == 1 then
		redis.call('PUBLISH', 'errand:wake', 'job')
	end
else
	redis.call('HSET', KEYS[1], 'msg', ARGV[2], 'state', 'scheduled')
	redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
	redis.call('PUBLISH', 'errand:wake', 'due:' .. ARGV[4])
end
return 1
`)

// enqueueArgs returns the keys and arguments of enqueueJob for e.
func (c *Client) enqueueArgs(e job.Envelope, extra map[string]string) ([]string, []any, error) {
	msg, err := c.encode(e, extra)
	if err != nil {
		return nil, nil, err
	}
	prefix := "asynq:{" + e.Queue + "}:"
	keys := []string{prefix + "t:" + e.ID, prefix + "pending"}
	due := "0"
	if e.Delayed() {
		due = dueScore(e.DueAt)
		keys[1] = prefix + "scheduled"
	}
	add := ""
	if _, known := c.known.Load(e.Queue); !known {
		add = e.Queue
	}
	return keys, []any{e.ID, msg, time.Now().UnixNano(), due, add}, nil
}

// Enqueue puts a prepared envelope into Redis. Queuing the same envelope twice
// returns ErrDuplicate and changes nothing.
func (c *Client) Enqueue(ctx context.Context, e job.Envelope) error {
	return c.enqueue(ctx, e, nil)
}

func (c *Client) enqueue(ctx context.Context, e job.Envelope, extra map[string]string) error {
	keys, args, err := c.enqueueArgs(e, extra)
	if err != nil {
		return err
	}
	n, err := enqueueJob.Run(ctx, c.rdb, keys, args...).Int()
	if err != nil {
		return fmt.Errorf("queue: enqueue %s %s: %w", e.Type, e.ID, err)
	}
	c.known.Store(e.Queue, true)
	if n == 0 {
		return ErrDuplicate
	}
	return nil
}

// EnqueueMany puts prepared envelopes into Redis in one round trip. It
// returns one error per envelope (nil, ErrDuplicate, or why it failed).
func (c *Client) EnqueueMany(ctx context.Context, es []job.Envelope) []error {
	errs := make([]error, len(es))
	type call struct {
		i   int
		cmd *redis.Cmd
	}
	run := func() ([]call, error) {
		calls := make([]call, 0, len(es))
		_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, e := range es {
				keys, args, err := c.enqueueArgs(e, nil)
				if err != nil {
					errs[i] = err
					continue
				}
				calls = append(calls, call{i, enqueueJob.EvalSha(ctx, p, keys, args...)})
			}
			return nil
		})
		return calls, err
	}
	calls, err := run()
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		if lerr := enqueueJob.Load(ctx, c.rdb).Err(); lerr == nil {
			calls, _ = run()
		}
	}
	for _, cl := range calls {
		n, err := cl.cmd.Int()
		if err == nil {
			c.known.Store(es[cl.i].Queue, true)
		}
		switch {
		case err != nil:
			errs[cl.i] = fmt.Errorf("queue: enqueue %s %s: %w", es[cl.i].Type, es[cl.i].ID, err)
		case n == 0:
			errs[cl.i] = ErrDuplicate
		}
	}
	return errs
}

// dueScore is a due instant as a scheduled-set score: Unix seconds with the
// milliseconds as a fraction, rounded up, so a job is never handed over
// before its instant.
func dueScore(t time.Time) string {
	ms := (t.UnixNano() + int64(time.Millisecond) - 1) / int64(time.Millisecond)
	return strconv.FormatInt(ms/1000, 10) + "." + fmt.Sprintf("%03d", ms%1000)
}

// encode builds the stored task message of e, in asynq's format.
func (c *Client) encode(e job.Envelope, extra map[string]string) ([]byte, error) {
	def, err := c.reg.Lookup(e.Type)
	if err != nil {
		return nil, err
	}
	headers := map[string]string{}
	// The first-queued instant bounds throttled retries; it is left out when
	// the job's ID (time-ordered, see job.NewID) already tells it.
	if t, ok := job.IDTime(e.ID); !ok || !t.Equal(e.QueuedAt.Truncate(time.Millisecond)) {
		headers[headerQueued] = strconv.FormatInt(e.QueuedAt.UnixMilli(), 10)
	}
	if e.Callback {
		headers[headerCallback] = "1"
	}
	maps.Copy(headers, extra)
	return encodeTaskMsg(taskMsg{
		Type: e.Type, Payload: e.Payload, Headers: headers, ID: e.ID, Queue: e.Queue,
		Retry: maxRetrySentry,
		// asynq's own deadline comes after errand's, so the policy always
		// sees the timeout and classifies it.
		Timeout:   int64((def.Timeout + timeoutGrace) / time.Second),
		Retention: int64(c.reg.Retention() / time.Second),
	}), nil
}

// Close releases nothing: it is there for symmetry with the Redis client the
// Client was given, which it does not close.
func (c *Client) Close() error { return nil }

func headerMillis(h map[string]string, key string) (time.Time, bool) {
	v, ok := h[key]
	if !ok {
		return time.Time{}, false
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMilli(ms), true
}
