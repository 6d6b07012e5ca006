package queue

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"time"

	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/rdb"
	"github.com/redis/go-redis/v9"
)

// Headers errand keeps on tasks.
const (
	headerQueued   = "errand-queued-ms"
	headerCallback = "errand-callback"
	// headerOrder is an ordered job's ordering key (see ordered): the key
	// it was queued under, even if [jobs] changes before it runs.
	headerOrder    = "errand-order"
	maxRetrySentry = 1 << 20 // errand counts attempts itself; see policy.go
)

// Client queues jobs: think-queue's Queue::push and Queue::later.
//
// A job is written in asynq's layout (see internal/rdb), so asynq's tools and
// the dashboard see it, by one script that also wakes idle workers: one round
// trip per job.
type Client struct {
	reg *job.Registry
	rdb *rdb.RDB
}

// NewClient returns a client over c.
func NewClient(reg *job.Registry, c redis.UniversalClient) *Client {
	return &Client{reg: reg, rdb: rdb.New(c)}
}

// ErrDuplicate means a job with the same ID is already queued (or kept).
var ErrDuplicate = rdb.ErrDuplicate

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

// Enqueue puts a prepared envelope into Redis. Queuing the same envelope twice
// returns ErrDuplicate and changes nothing.
func (c *Client) Enqueue(ctx context.Context, e job.Envelope) error {
	return c.enqueue(ctx, e, nil)
}

func (c *Client) enqueue(ctx context.Context, e job.Envelope, extra map[string]string) error {
	t, err := c.task(e, extra)
	if err != nil {
		return err
	}
	err = c.rdb.Enqueue(ctx, t)
	if err != nil && !errors.Is(err, ErrDuplicate) {
		return fmt.Errorf("queue: %w", err)
	}
	return err
}

// EnqueueMany puts prepared envelopes into Redis in one round trip. It
// returns one error per envelope (nil, ErrDuplicate, or why it failed).
func (c *Client) EnqueueMany(ctx context.Context, es []job.Envelope) []error {
	return c.EnqueueWith(es, func(r *rdb.RDB, ts []rdb.Task, _ []int) []error {
		written, _ := r.EnqueueManyWait(ctx, ts, 0)
		return written
	})
}

// EnqueueWith turns es into tasks and writes those that are valid with write
// (at: each task's index in es), returning one error per envelope. The outbox
// relay writes through it with a wait for replicas.
func (c *Client) EnqueueWith(es []job.Envelope, write func(r *rdb.RDB, ts []rdb.Task, at []int) []error) []error {
	errs := make([]error, len(es))
	ts := make([]rdb.Task, 0, len(es))
	at := make([]int, 0, len(es)) // es index of each task
	for i, e := range es {
		t, err := c.task(e, nil)
		if err != nil {
			errs[i] = err
			continue
		}
		ts = append(ts, t)
		at = append(at, i)
	}
	if len(ts) == 0 {
		return errs
	}
	for k, err := range write(c.rdb, ts, at) {
		if err != nil && !errors.Is(err, ErrDuplicate) {
			err = fmt.Errorf("queue: %w", err)
		}
		errs[at[k]] = err
	}
	return errs
}

// task is e as a job to write, in asynq's format.
func (c *Client) task(e job.Envelope, extra map[string]string) (rdb.Task, error) {
	def, err := c.reg.Lookup(e.Type)
	if err != nil {
		return rdb.Task{}, err
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
	orderKey, ordered := def.OrderKey(e.Payload)
	if ordered {
		headers[headerOrder] = orderKey
	}
	maps.Copy(headers, extra)
	t := rdb.Task{
		ID: e.ID, Type: e.Type, Queue: e.Queue, Payload: e.Payload, Headers: headers,
		Retry: maxRetrySentry,
		// asynq's own deadline comes after errand's, so the policy always
		// sees the timeout and classifies it.
		Timeout:   def.Timeout + timeoutGrace,
		Retention: c.reg.Retention(),
		OrderKey:  orderKey,
	}
	if e.Delayed() {
		t.DueAt = e.DueAt
	}
	return t, nil
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
