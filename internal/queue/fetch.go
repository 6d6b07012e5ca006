package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/errandhq/errand/internal/rdb"
	"github.com/errandhq/errand/internal/workerid"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// errand's fetcher takes jobs off Redis for the worker through internal/rdb,
// on asynq's own layout (so asynq's tools and the dashboard see its jobs like
// any other); what differs from asynq's processor is how:
//
//   - one round trip takes up to a batch of jobs from the worker's queues
//     (asynq takes one job per round trip and, when a queue is empty, spends
//     one more round trip per queue): one script per queue that has jobs,
//     sent together; a queue known to be empty is not asked (see depths);
//   - completions are written in batches, one round trip for many jobs;
//   - an idle fetcher does not poll: it waits for a wake-up published when a
//     job is queued, handed over or put back (rdb.WakeChannel), and only
//     looks on its own every poll interval as a safety net, for jobs queued
//     by other programs.

const (
	// leaseRenew is how often the leases of running jobs are extended: well
	// within rdb.LeaseDuration, so a living worker's lease never ends even
	// when a renewal or two is late.
	leaseRenew = 3 * time.Second
	// recoverEvery is how often each worker puts back the jobs whose lease
	// ended (their worker was lost), give or take a jitter so workers do not
	// all look at once: a lost worker's jobs run again within
	// rdb.LeaseDuration + recoverEvery.
	recoverEvery     = 3 * time.Second
	maxFetchBatch    = 64
	maxCompleteBatch = 256
)

// jobMeta is what the policy knows of a job fetched by errand's fetcher
// (asynq's own processor passes the same in its context).
type jobMeta struct {
	id, queue string
	retried   int
}

type metaKey struct{}

// fetcher takes jobs for a worker and runs them under the policy.
type fetcher struct {
	rdb     *rdb.RDB
	depths  *depths
	policy  *Policy
	queues  QueueSet
	loops   int
	poll    time.Duration
	log     *slog.Logger
	wake    chan struct{} // a job may be pending
	slots   chan struct{} // one per job running
	acks    chan *rdb.Fetched
	jobs    chan *rdb.Fetched // to the runners, one per slot
	jobsCtx context.Context   // cancelled when running jobs must stop
	stopJob context.CancelFunc
	budget  Budget // nil: no limit

	mu      sync.Mutex
	running map[string]string // id → queue
	wg      sync.WaitGroup    // running jobs
	errLog  time.Time
}

func newFetcher(r *rdb.RDB, p *Policy, qs QueueSet, concurrency, loops int, poll time.Duration, log *slog.Logger) *fetcher {
	ctx, cancel := context.WithCancel(context.Background())
	return &fetcher{
		rdb: r, depths: newDepths(qs.Order, poll), policy: p, queues: qs, loops: max(1, loops), poll: poll, log: log,
		wake:    make(chan struct{}, 1),
		slots:   make(chan struct{}, concurrency),
		acks:    make(chan *rdb.Fetched, 2*maxCompleteBatch),
		jobs:    make(chan *rdb.Fetched),
		jobsCtx: ctx, stopJob: cancel,
		running: map[string]string{},
	}
}

// poke wakes the fetch loops: a job may be pending on queue ("" for any).
func (f *fetcher) poke(queue string) {
	f.depths.forget(queue)
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// order returns the queues in the order to take from this time: by priority
// when strict, else a random order weighted by the queues' weights (asynq's
// rule), so each queue gets its share over many fetches.
func (f *fetcher) order() []string {
	if f.queues.Strict || len(f.queues.Order) == 1 {
		return f.queues.Order
	}
	var pool []string
	for _, q := range f.queues.Order {
		for range f.queues.Weights[q] {
			pool = append(pool, q)
		}
	}
	rand.Shuffle(len(pool), func(i, j int) { pool[i], pool[j] = pool[j], pool[i] })
	seen := make(map[string]bool, len(f.queues.Order))
	out := make([]string, 0, len(f.queues.Order))
	for _, q := range pool {
		if !seen[q] {
			seen[q] = true
			out = append(out, q)
		}
	}
	return out
}

// loop fetches until ctx ends.
func (f *fetcher) loop(ctx context.Context) {
	idle := time.NewTimer(f.poll)
	defer idle.Stop()
	for {
		// Wait for one free slot, then take every free one (up to a batch).
		select {
		case f.slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		n := 1
	more:
		for n < maxFetchBatch {
			select {
			case f.slots <- struct{}{}:
				n++
			default:
				break more
			}
		}
		jobs, err := f.fetchWithin(ctx, n)
		for range n - len(jobs) {
			<-f.slots
		}
		for _, j := range jobs {
			f.start(j)
		}
		if err != nil && ctx.Err() == nil {
			f.logError("fetch", err)
		}
		if len(jobs) > 0 && err == nil {
			continue
		}
		// Nothing pending: wait for a wake-up, the safety poll, or the end.
		if !idle.Stop() {
			select {
			case <-idle.C:
			default:
			}
		}
		wait := f.poll
		if err != nil {
			wait = max(wait, time.Second) // Redis is failing: do not hammer it
		}
		idle.Reset(wait)
		select {
		case <-f.wake:
		case <-idle.C:
			f.depths.forget("") // jobs queued by other programs wake no one
		case <-ctx.Done():
			return
		}
	}
}

func (f *fetcher) logError(what string, err error) {
	f.mu.Lock()
	quiet := time.Since(f.errLog) < 10*time.Second
	if !quiet {
		f.errLog = time.Now()
	}
	f.mu.Unlock()
	if !quiet {
		f.log.Error("worker: "+what+" failed", "error", err.Error())
	}
}

// fetch takes up to n jobs. Usually one round trip does: it asks the queues
// known to hold jobs for what they are known to hold, and the first queue of
// unknown length for all the rest. When that queue had fewer, the lengths
// learnt meanwhile lead a second round trip to the others.
func (f *fetcher) fetch(ctx context.Context, n int) ([]*rdb.Fetched, error) {
	order := f.order()
	var out []*rdb.Fetched
	for range len(order) + 1 {
		takes, seen := f.depths.plan(order, n-len(out))
		if len(takes) == 0 {
			break
		}
		taken, err := f.rdb.Fetch(ctx, takes, time.Now().Add(rdb.LeaseDuration))
		f.depths.learn(taken, seen)
		for _, t := range taken {
			for _, j := range t.Jobs {
				if j.Bad != nil {
					// A task hash that is gone or unreadable cannot run; the
					// job is failed for good so that it shows, instead of
					// vanishing.
					f.log.Error("worker: unreadable job moved to the failed list", "queue", j.Queue, "job_id", j.ID, "error", j.Bad.Error())
					f.archive(j, fmt.Sprintf("unreadable job: %v", j.Bad))
					continue
				}
				out = append(out, j)
			}
		}
		if err != nil || len(out) >= n {
			return out, err
		}
	}
	return out, nil
}

// Budget bounds the jobs a worker takes (--max-jobs): asked before each batch, so none is leased past it.
type Budget interface {
	Take(n int) int          // how many of n more jobs may be fetched now
	Taken(reserved, got int) // got of the reserved jobs were fetched
}

// fetchWithin fetches up to n jobs, within the budget when there is one.
func (f *fetcher) fetchWithin(ctx context.Context, n int) ([]*rdb.Fetched, error) {
	if f.budget == nil {
		return f.fetch(ctx, n)
	}
	if n = f.budget.Take(n); n == 0 {
		return nil, nil
	}
	jobs, err := f.fetch(ctx, n)
	f.budget.Taken(n, len(jobs))
	return jobs, err
}

// depths is what the fetch loops know of how many jobs are pending on each
// queue: the length the last fetch from it left, or unknown. A queue known
// to be empty is not asked again until a wake-up names it (a job queued on
// an empty list publishes one) or the knowledge is a poll interval old: jobs
// queued by other programs, or moved by asynq's own forwarder, wake no one.
// So a drain of one queue costs one script per batch, whatever the number of
// queues, and an idle worker, per poll, one script and an LLEN per other
// queue.
type depths struct {
	queues []string
	poll   time.Duration

	mu    sync.Mutex
	left  map[string]int    // absent: unknown
	gen   map[string]uint64 // bumped whenever a queue's length is forgotten
	reset time.Time         // when every length was last forgotten
}

func newDepths(queues []string, poll time.Duration) *depths {
	return &depths{queues: queues, poll: poll, left: map[string]int{}, gen: map[string]uint64{}, reset: time.Now()}
}

// forget drops what is known of queue's length ("" for every queue).
func (d *depths) forget(queue string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.forgetLocked(queue)
}

func (d *depths) forgetLocked(queue string) {
	if queue != "" {
		delete(d.left, queue)
		d.gen[queue]++
		return
	}
	for _, q := range d.queues {
		delete(d.left, q)
		d.gen[q]++
	}
	d.reset = time.Now()
}

// plan returns the takes for n jobs from the queues in order, and the
// generation of each queue asked. A queue of unknown length gets all that is
// still wanted; those after it are only asked their length.
func (d *depths) plan(order []string, n int) ([]rdb.Take, map[string]uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if time.Since(d.reset) >= d.poll {
		d.forgetLocked("")
	}
	var takes []rdb.Take
	seen := make(map[string]uint64, len(order))
	for _, q := range order {
		left, known := d.left[q]
		var take int
		switch {
		case known && left == 0:
			continue
		case n == 0 && known:
			continue // nothing wanted, nothing to learn
		case !known:
			take = n // all still wanted (0: its length only)
		default:
			take = min(n, left)
		}
		n -= take
		takes = append(takes, rdb.Take{Queue: q, N: take})
		seen[q] = d.gen[q]
	}
	return takes, seen
}

// learn records the lengths a fetch found, unless a queue's length was
// forgotten meanwhile: a wake-up for a job queued after the fetch looked
// must not be overwritten by the fetch's "empty".
func (d *depths) learn(taken []rdb.Taken, seen map[string]uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, t := range taken {
		if d.gen[t.Queue] != seen[t.Queue] {
			continue
		}
		if t.Err != nil {
			delete(d.left, t.Queue)
			continue
		}
		d.left[t.Queue] = t.Left
	}
}

// runners starts the goroutines that run jobs, one per slot: long-lived, so
// a job costs no goroutine start and no stack growth. They end when jobs is
// closed.
func (f *fetcher) runners() {
	for range cap(f.slots) {
		go func() {
			for j := range f.jobs {
				f.work(j)
			}
		}()
	}
}

// count returns how many jobs are running.
func (f *fetcher) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.running)
}

func (f *fetcher) start(j *rdb.Fetched) {
	f.mu.Lock()
	f.running[j.ID] = j.Queue
	f.mu.Unlock()
	f.wg.Add(1)
	f.jobs <- j
}

// work runs one job and records its outcome.
func (f *fetcher) work(j *rdb.Fetched) {
	defer f.wg.Done()
	ctx := context.WithValue(f.jobsCtx, metaKey{}, jobMeta{id: j.ID, queue: j.Queue, retried: j.Msg.Retried})
	task := asynq.NewTaskWithHeaders(j.Msg.Type, j.Msg.Payload, j.Msg.Headers)
	err := f.policy.ProcessTask(ctx, task)
	f.mu.Lock()
	delete(f.running, j.ID)
	f.mu.Unlock()
	<-f.slots
	var v *verdict
	switch {
	case err == nil:
		if f.policy.history != nil {
			f.policy.history.Done(j)
		}
		f.acks <- j
	case f.jobsCtx.Err() != nil && !errors.As(err, &v):
		// Stopped by shutdown: back to its queue, not an attempt.
		f.redis(func(ctx context.Context) error { return f.rdb.Requeue(ctx, j) })
	case errors.Is(err, asynq.SkipRetry) || j.Msg.Retried >= j.Msg.Retry:
		f.archive(j, err.Error())
	default:
		counts := IsFailure(err)
		var at time.Time // at once
		if wait := f.policy.retryWait(j.Msg.Retried, err, task); wait > 0 {
			at = time.Now().Add(wait)
		}
		if f.policy.history != nil {
			f.policy.history.Retry(j, err.Error())
		}
		f.redis(func(ctx context.Context) error { return f.rdb.Retry(ctx, j, err.Error(), counts, at) })
	}
}

func (f *fetcher) archive(j *rdb.Fetched, errMsg string) {
	if f.policy.history != nil {
		f.policy.history.Failed(j, errMsg) // in the database before the archive
	}
	f.redis(func(ctx context.Context) error { return f.rdb.Archive(ctx, j, errMsg) })
}

// redis runs a write that records a job's outcome, trying again while Redis
// is unreachable, for as long as the job's lease would last. Past that, the
// lease has expired and asynq's recoverer owns the job: it runs it again.
func (f *fetcher) redis(op func(context.Context) error) {
	deadline := time.Now().Add(rdb.LeaseDuration)
	wait := 50 * time.Millisecond
	for {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		err := op(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().Add(wait).After(deadline) {
			f.log.Error("worker: could not record a job's outcome; it will run again when its lease expires", "error", err.Error())
			return
		}
		time.Sleep(wait)
		wait = min(2*wait, time.Second)
	}
}

// ackLoop writes completions in batches until acks is closed.
func (f *fetcher) ackLoop() {
	batch := make([]*rdb.Fetched, 0, maxCompleteBatch)
	for j := range f.acks {
		batch = append(batch[:0], j)
	drain:
		for len(batch) < maxCompleteBatch {
			select {
			case j, ok := <-f.acks:
				if !ok {
					break drain
				}
				batch = append(batch, j)
			default:
				break drain
			}
		}
		f.redis(func(ctx context.Context) error { return f.rdb.Complete(ctx, batch) })
	}
}

// recoverLoop puts back, at start and every recoverEvery, the jobs of lost
// workers (SIGKILL, crash): at once if it ran on this host and its process is
// gone (so a restarted worker takes its predecessor's jobs at start), else
// when their lease ends; each as a used attempt, with its id. asynq's
// recoverer stays behind it, 30 s later, as a safety net.
func (f *fetcher) recoverLoop(ctx context.Context) {
	for {
		got, err := f.rdb.Recover(ctx, f.queues.Order, time.Now(), workerid.Dead, 100)
		if err != nil && ctx.Err() == nil {
			f.logError("recovering lost jobs", err)
		}
		for q, n := range got {
			f.log.Warn("worker: put back jobs of a lost worker", "queue", q, "jobs", n)
			f.poke(q)
		}
		jitter := time.Duration(rand.Int64N(int64(recoverEvery / 2)))
		select {
		case <-ctx.Done():
			return
		case <-time.After(recoverEvery - recoverEvery/4 + jitter):
		}
	}
}

// leaseLoop extends the leases of running jobs until ctx ends.
func (f *fetcher) leaseLoop(ctx context.Context) {
	t := time.NewTicker(leaseRenew)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		byQueue := map[string][]string{}
		f.mu.Lock()
		for id, q := range f.running {
			byQueue[q] = append(byQueue[q], id)
		}
		f.mu.Unlock()
		if len(byQueue) == 0 {
			continue
		}
		if err := f.rdb.ExtendLeases(ctx, byQueue, time.Now().Add(rdb.LeaseDuration)); err != nil && ctx.Err() == nil {
			f.logError("lease renewal", err)
		}
	}
}

// subscribe delivers wake-ups to the fetcher and the due forwarder until ctx
// ends. go-redis re-subscribes by itself after a lost connection; a wake-up
// lost meanwhile costs at most one poll interval.
func subscribe(ctx context.Context, r *rdb.RDB, onJob func(queue string), onDue func(at time.Time)) {
	ps := r.Subscribe(ctx)
	defer ps.Close()
	ch := ps.Channel(redis.WithChannelHealthCheckInterval(30 * time.Second))
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-ch:
			if !ok {
				return
			}
			if w := rdb.ParseWake(m.Payload); !w.Due.IsZero() {
				onDue(w.Due)
			} else {
				onJob(w.Queue)
			}
		}
	}
}
