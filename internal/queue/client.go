package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/errandhq/errand/internal/config"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// Headers errand keeps on every task. asynq stores due times in whole seconds
// and may start a task up to a second early, so the exact due instant travels
// with the task and the worker waits for it.
const (
	headerDue      = "errand-due-ms"
	headerQueued   = "errand-queued-ms"
	headerRetryOf  = "errand-retry-of"
	headerCallback = "errand-callback"
	maxRetrySentry = 1 << 20 // errand counts attempts itself; see policy.go
)

// RedisOptions turns the [redis] settings into go-redis options.
func RedisOptions(c config.Redis) *redis.Options {
	o := &redis.Options{Addr: c.Addr, Password: c.Password, DB: c.DB}
	o.TLSConfig, _ = c.RedisTLS() // checked by config.Validate
	return o
}

// ConnOpt returns the asynq connection option for the [redis] settings.
func ConnOpt(c config.Redis) asynq.RedisClientOpt {
	o := asynq.RedisClientOpt{Addr: c.Addr, Password: c.Password, DB: c.DB}
	o.TLSConfig, _ = c.RedisTLS() // checked by config.Validate
	return o
}

// Client queues jobs: think-queue's Queue::push and Queue::later.
type Client struct {
	reg *Registry
	ac  *asynq.Client
	rdb redis.UniversalClient

	// Wake-ups for idle workers, published after enqueues: at most one in
	// flight, covering every enqueue made before it was sent, so a burst of
	// enqueues costs a handful of PUBLISHes, and no enqueue waits for one.
	dirty      atomic.Bool
	publishing atomic.Bool
	wakers     sync.WaitGroup
}

// NewClient returns a client over rdb.
func NewClient(reg *Registry, rdb redis.UniversalClient) *Client {
	return &Client{reg: reg, ac: asynq.NewClientFromRedisClient(rdb), rdb: rdb}
}

// ErrDuplicate means a job with the same ID is already queued (or kept).
var ErrDuplicate = errors.New("job already queued")

// Push queues a typed job now (or after its type's default delay).
func (c *Client) Push(ctx context.Context, args Args, opts ...Option) (Envelope, error) {
	e, err := c.reg.Prepare(args, opts...)
	if err != nil {
		return e, err
	}
	return e, c.Enqueue(ctx, e)
}

// Later queues a typed job to run no earlier than delay from now.
func (c *Client) Later(ctx context.Context, delay time.Duration, args Args, opts ...Option) (Envelope, error) {
	return c.Push(ctx, args, append(opts, Delay(delay))...)
}

// Enqueue puts a prepared envelope into Redis. Queuing the same envelope twice
// returns ErrDuplicate and changes nothing.
func (c *Client) Enqueue(ctx context.Context, e Envelope) error {
	task, opts, err := c.task(e)
	if err != nil {
		return err
	}
	if _, err := c.ac.EnqueueContext(ctx, task, opts...); err != nil {
		if errors.Is(err, asynq.ErrTaskIDConflict) || errors.Is(err, asynq.ErrDuplicateTask) {
			return ErrDuplicate
		}
		return fmt.Errorf("queue: enqueue %s %s: %w", e.Type, e.ID, err)
	}
	if e.delayed() {
		noteDue(ctx, c.rdb, e.Queue, e.ID, e.DueAt)
	} else {
		c.wake()
	}
	return nil
}

// wake tells idle workers a job is pending, without making the caller wait.
func (c *Client) wake() {
	c.dirty.Store(true)
	if c.publishing.CompareAndSwap(false, true) {
		c.wakers.Add(1)
		go c.publishWakes()
	}
}

func (c *Client) publishWakes() {
	defer c.wakers.Done()
	for {
		for c.dirty.Swap(false) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			// A lost wake-up costs latency, not the job: workers also look
			// on their own every poll interval.
			_ = c.rdb.Publish(ctx, wakeChannel, wakeJob).Err()
			cancel()
		}
		c.publishing.Store(false)
		// An enqueue that set dirty after the last Swap but saw publishing
		// still true left its wake-up to this goroutine.
		if !c.dirty.Load() || !c.publishing.CompareAndSwap(false, true) {
			return
		}
	}
}

func (c *Client) task(e Envelope, extra ...Option) (*asynq.Task, []asynq.Option, error) {
	def, err := c.reg.Lookup(e.Type)
	if err != nil {
		return nil, nil, err
	}
	headers := map[string]string{
		headerDue:    strconv.FormatInt(e.DueAt.UnixMilli(), 10),
		headerQueued: strconv.FormatInt(e.QueuedAt.UnixMilli(), 10),
	}
	if e.Callback {
		headers[headerCallback] = "1"
	}
	opts := []asynq.Option{
		asynq.TaskID(e.ID),
		asynq.Queue(e.Queue),
		asynq.MaxRetry(maxRetrySentry),
		// asynq's own deadline comes after errand's, so the policy always sees
		// the timeout and classifies it.
		asynq.Timeout(def.Timeout + timeoutGrace),
	}
	if r := c.reg.Retention(); r > 0 {
		opts = append(opts, asynq.Retention(r))
	}
	if e.delayed() {
		// asynq's own schedule is the safety net, set to the whole second
		// after the due instant: the due forwarder hands the job over at
		// its exact time, and asynq's scan must not hand it over earlier
		// (the job would then hold a worker slot while it waits).
		opts = append(opts, asynq.ProcessAt(e.DueAt.Truncate(time.Second).Add(time.Second)))
	}
	return asynq.NewTaskWithHeaders(e.Type, e.Payload, headers), opts, nil
}

// Close waits for the last wake-up to be sent. It does not close the Redis
// client the Client was given.
func (c *Client) Close() error {
	c.wakers.Wait()
	return nil
}

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

// delayed reports whether the job is to wait: it was queued with a delay and
// its time has not come. An immediate job goes straight to its queue's
// pending list, in the order it was queued.
func (e Envelope) delayed() bool {
	return e.DueAt.After(e.QueuedAt) && e.DueAt.After(time.Now())
}
