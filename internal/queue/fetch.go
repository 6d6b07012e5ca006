package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// errand's fetcher takes jobs off Redis for the worker. It works on asynq's
// own data layout — the same lists, sets and task hashes, moved through the
// same states — so asynq's recoverer, forwarder, janitor and inspector, and
// the dashboard, see its jobs like any other; what differs is how:
//
//   - one script takes up to a batch of jobs from all the worker's queues in
//     one round trip (asynq takes one job per round trip and, when a queue is
//     empty, spends one more round trip per queue);
//   - completions are written in batches, one round trip for many jobs;
//   - an idle fetcher does not poll: it waits for a wake-up published when a
//     job is queued, handed over or put back (wakeChannel), and only looks on
//     its own every poll interval as a safety net, for jobs queued by other
//     programs.

// wakeChannel carries wake-ups: "job" when a job became pending,
// "due:<score>" when a job was put in a scheduled or retry set, due at score
// (dueScore's form).
const wakeChannel = "errand:wake"

// leaseFor is how long a fetched job is leased (asynq's own lease length, so
// its recoverer treats errand's jobs alike); leases are extended every
// leaseRenew while the job runs.
const (
	leaseFor   = 30 * time.Second
	leaseRenew = 10 * time.Second
	statsTTL   = 90 * 24 * time.Hour // how long asynq keeps daily counters
	// archive limits: asynq's own, so its archive stays as it expects.
	maxArchived      = 10000
	archivedFor      = 90 * 24 * time.Hour
	maxFetchBatch    = 64
	maxCompleteBatch = 256
)

// fetchJobs moves up to ARGV[2] jobs from the pending lists of the queues
// ARGV[3..] (in that order, skipping paused queues) to their active lists,
// leased until ARGV[1], and returns queue, id and message of each.
var fetchJobs = redis.NewScript(`
local n = tonumber(ARGV[2])
local out = {}
for i = 3, #ARGV do
	if n <= 0 then break end
	local p = 'asynq:{' .. ARGV[i] .. '}:'
	if redis.call('EXISTS', p .. 'paused') == 0 then
		-- The oldest jobs are at the list's tail: take up to n from there
		-- in three commands, not one RPOPLPUSH per job.
		local ids = redis.call('LRANGE', p .. 'pending', -n, -1)
		if #ids > 0 then
			redis.call('LTRIM', p .. 'pending', 0, -#ids - 1)
			redis.call('LPUSH', p .. 'active', unpack(ids))
			local lease = {}
			for j = #ids, 1, -1 do
				local id = ids[j]
				local key = p .. 't:' .. id
				redis.call('HSET', key, 'state', 'active')
				redis.call('HDEL', key, 'pending_since')
				lease[#lease + 1] = ARGV[1]
				lease[#lease + 1] = id
				out[#out + 1] = ARGV[i]
				out[#out + 1] = id
				out[#out + 1] = redis.call('HGET', key, 'msg') or ''
			end
			redis.call('ZADD', p .. 'lease', unpack(lease))
			n = n - #ids
		end
	end
end
return out
`)

// completeJobs records finished jobs. ARGV[1..3]: the day (counter key
// suffix), when the day's counter expires, now (s); then, per queue: its
// name, the number k of its jobs, and k times four arguments: id, retention
// (s, 0 = delete now), the message to keep, the uniqueness lock to release
// (or ""). A job no longer active (its lease was lost and the recoverer took
// it) is left alone.
var completeJobs = redis.NewScript(`
local total = 0
local i = 4
while i <= #ARGV do
	local p = 'asynq:{' .. ARGV[i] .. '}:'
	local k = tonumber(ARGV[i + 1])
	i = i + 2
	local done = {}
	for _ = 1, k do
		local id = ARGV[i]
		if redis.call('LREM', p .. 'active', 0, id) > 0 then
			local keep = tonumber(ARGV[i + 1])
			if keep > 0 then
				redis.call('ZADD', p .. 'completed', tonumber(ARGV[3]) + keep, id)
				redis.call('HSET', p .. 't:' .. id, 'msg', ARGV[i + 2], 'state', 'completed')
			else
				redis.call('DEL', p .. 't:' .. id)
			end
			local lock = ARGV[i + 3]
			if lock ~= '' and redis.call('GET', lock) == id then
				redis.call('DEL', lock)
			end
			done[#done + 1] = id
		end
		i = i + 4
	end
	if #done > 0 then
		redis.call('ZREM', p .. 'lease', unpack(done))
		local day = p .. 'processed:' .. ARGV[1]
		if redis.call('INCRBY', day, #done) == #done then redis.call('EXPIREAT', day, ARGV[2]) end
		redis.call('INCRBY', p .. 'processed', #done)
		total = total + #done
	end
end
return total
`)

// luaCountFailure adds a failed attempt to a queue's counters, as asynq
// counts it: processed and failed, for the day (kept until the given expiry)
// and in total.
const luaCountFailure = `
local function countFailure(p, day, expire)
	for _, k in ipairs({'processed:', 'failed:'}) do
		local key = p .. k .. day
		if redis.call('INCR', key) == 1 then redis.call('EXPIREAT', key, expire) end
	end
	redis.call('INCR', p .. 'processed')
	redis.call('INCR', p .. 'failed')
end
`

// retryJob puts a failed job back: into the retry set until ARGV[4] (a due
// score, see dueScore), or, when ARGV[4] is "0", straight onto its pending
// list. ARGV: queue, id, the
// updated message, retry at, whether the attempt counts (1/0), day, day's
// counter expiry, now (ns, for pending_since).
var retryJob = redis.NewScript(luaCountFailure + `
local p = 'asynq:{' .. ARGV[1] .. '}:'
local id = ARGV[2]
if redis.call('LREM', p .. 'active', 0, id) == 0 then return 0 end
redis.call('ZREM', p .. 'lease', id)
local key = p .. 't:' .. id
if ARGV[4] == '0' then
	redis.call('LPUSH', p .. 'pending', id)
	redis.call('HSET', key, 'msg', ARGV[3], 'state', 'pending', 'pending_since', ARGV[8])
	redis.call('PUBLISH', 'errand:wake', 'job')
else
	redis.call('ZADD', p .. 'retry', ARGV[4], id)
	redis.call('HSET', key, 'msg', ARGV[3], 'state', 'retry')
	redis.call('PUBLISH', 'errand:wake', 'due:' .. ARGV[4])
end
if ARGV[5] == '1' then countFailure(p, ARGV[6], ARGV[7]) end
return 1
`)

// archiveJob moves a job that failed for good to the archive (errand's failed
// list), trimmed as asynq trims it. ARGV: queue, id, the updated message, now
// (s), the cut-off (s), the archive's size limit, day, day's counter expiry.
var archiveJob = redis.NewScript(luaCountFailure + `
local p = 'asynq:{' .. ARGV[1] .. '}:'
local id = ARGV[2]
if redis.call('LREM', p .. 'active', 0, id) == 0 then return 0 end
redis.call('ZREM', p .. 'lease', id)
local archived = p .. 'archived'
redis.call('ZADD', archived, ARGV[4], id)
local old = redis.call('ZRANGE', archived, '-inf', ARGV[5], 'BYSCORE')
local extra = redis.call('ZRANGE', archived, 0, -tonumber(ARGV[6]))
for _, set in ipairs({old, extra}) do
	if #set > 0 then
		for _, x in ipairs(set) do redis.call('DEL', p .. 't:' .. x) end
		redis.call('ZREM', archived, unpack(set))
	end
end
redis.call('HSET', p .. 't:' .. id, 'msg', ARGV[3], 'state', 'archived')
countFailure(p, ARGV[7], ARGV[8])
return 1
`)

// requeueJob puts a job interrupted by shutdown back at the head of its
// pending list, unchanged: the attempt does not count.
var requeueJob = redis.NewScript(`
local p = 'asynq:{' .. ARGV[1] .. '}:'
local id = ARGV[2]
if redis.call('LREM', p .. 'active', 0, id) == 0 then return 0 end
redis.call('ZREM', p .. 'lease', id)
redis.call('RPUSH', p .. 'pending', id)
redis.call('HSET', p .. 't:' .. id, 'state', 'pending')
redis.call('PUBLISH', 'errand:wake', 'job')
return 1
`)

// jobMeta is what the policy knows of a job fetched by errand's fetcher
// (asynq's own processor passes the same in its context).
type jobMeta struct {
	id, queue string
	retried   int
}

type metaKey struct{}

// fetched is one job taken off Redis.
type fetched struct {
	queue, id string
	raw       []byte
	msg       taskMsg
}

// fetcher takes jobs for a worker and runs them under the policy.
type fetcher struct {
	rdb     redis.UniversalClient
	policy  *Policy
	queues  QueueSet
	loops   int
	poll    time.Duration
	log     *slog.Logger
	wake    chan struct{} // a job may be pending
	slots   chan struct{} // one per job running
	acks    chan *fetched
	jobs    chan *fetched   // to the runners, one per slot
	jobsCtx context.Context // cancelled when running jobs must stop
	stopJob context.CancelFunc

	mu      sync.Mutex
	running map[string]string // id → queue
	wg      sync.WaitGroup    // running jobs
	errLog  time.Time
}

func newFetcher(rdb redis.UniversalClient, p *Policy, qs QueueSet, concurrency, loops int, poll time.Duration, log *slog.Logger) *fetcher {
	ctx, cancel := context.WithCancel(context.Background())
	return &fetcher{
		rdb: rdb, policy: p, queues: qs, loops: max(1, loops), poll: poll, log: log,
		wake:    make(chan struct{}, 1),
		slots:   make(chan struct{}, concurrency),
		acks:    make(chan *fetched, 2*maxCompleteBatch),
		jobs:    make(chan *fetched),
		jobsCtx: ctx, stopJob: cancel,
		running: map[string]string{},
	}
}

// poke wakes the fetch loops: a job may be pending.
func (f *fetcher) poke() {
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
		jobs, err := f.fetch(ctx, n)
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

func (f *fetcher) fetch(ctx context.Context, n int) ([]*fetched, error) {
	order := f.order()
	args := make([]any, 0, 2+len(order))
	args = append(args, time.Now().Add(leaseFor).Unix(), n)
	for _, q := range order {
		args = append(args, q)
	}
	res, err := fetchJobs.Run(ctx, f.rdb, nil, args...).Slice()
	if err != nil {
		if errors.Is(err, redis.Nil) {
			return nil, nil
		}
		return nil, err
	}
	out := make([]*fetched, 0, len(res)/3)
	for i := 0; i+2 < len(res); i += 3 {
		q, _ := res[i].(string)
		id, _ := res[i+1].(string)
		raw, _ := res[i+2].(string)
		j := &fetched{queue: q, id: id, raw: []byte(raw)}
		m, derr := decodeTaskMsg(j.raw)
		if derr != nil {
			// A task hash that is gone or unreadable cannot run; the job is
			// failed for good so that it shows, instead of vanishing.
			f.log.Error("worker: unreadable job moved to the failed list", "queue", q, "job_id", id, "error", derr.Error())
			f.archive(j, fmt.Sprintf("unreadable job: %v", derr))
			continue
		}
		j.msg = m
		out = append(out, j)
	}
	return out, nil
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

func (f *fetcher) start(j *fetched) {
	f.mu.Lock()
	f.running[j.id] = j.queue
	f.mu.Unlock()
	f.wg.Add(1)
	f.jobs <- j
}

// work runs one job and records its outcome.
func (f *fetcher) work(j *fetched) {
	defer f.wg.Done()
	ctx := context.WithValue(f.jobsCtx, metaKey{}, jobMeta{id: j.id, queue: j.queue, retried: j.msg.Retried})
	task := asynq.NewTaskWithHeaders(j.msg.Type, j.msg.Payload, j.msg.Headers)
	err := f.policy.ProcessTask(ctx, task)
	f.mu.Lock()
	delete(f.running, j.id)
	f.mu.Unlock()
	<-f.slots
	var v *verdict
	switch {
	case err == nil:
		f.acks <- j
	case f.jobsCtx.Err() != nil && !errors.As(err, &v):
		// Stopped by shutdown: back to its queue, not an attempt.
		f.redis(func(ctx context.Context) error {
			return requeueJob.Run(ctx, f.rdb, nil, j.queue, j.id).Err()
		})
	case errors.Is(err, asynq.SkipRetry) || j.msg.Retried >= j.msg.Retry:
		f.archive(j, err.Error())
	default:
		counts := IsFailure(err)
		wait := f.policy.retryWait(j.msg.Retried, err, task)
		retried := -1
		if counts {
			retried = j.msg.Retried + 1
		}
		now := time.Now()
		at := "0"
		if wait > 0 {
			at = dueScore(now.Add(wait))
		}
		msg := withFailure(j.raw, retried, err.Error(), now.Unix())
		c := "0"
		if counts {
			c = "1"
		}
		f.redis(func(ctx context.Context) error {
			return retryJob.Run(ctx, f.rdb, nil, j.queue, j.id, msg, at, c,
				day(now), now.Add(statsTTL).Unix(), now.UnixNano()).Err()
		})
	}
}

func day(t time.Time) string { return t.UTC().Format("2006-01-02") }

func (f *fetcher) archive(j *fetched, errMsg string) {
	now := time.Now()
	msg := withFailure(j.raw, -1, errMsg, now.Unix())
	f.redis(func(ctx context.Context) error {
		return archiveJob.Run(ctx, f.rdb, nil, j.queue, j.id, msg, now.Unix(),
			now.Add(-archivedFor).Unix(), maxArchived, day(now), now.Add(statsTTL).Unix()).Err()
	})
}

// redis runs a write that records a job's outcome, trying again while Redis
// is unreachable, for as long as the job's lease would last. Past that, the
// lease has expired and asynq's recoverer owns the job: it runs it again.
func (f *fetcher) redis(op func(context.Context) error) {
	deadline := time.Now().Add(leaseFor)
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
	batch := make([]*fetched, 0, maxCompleteBatch)
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
		f.complete(batch)
	}
}

func (f *fetcher) complete(batch []*fetched) {
	now := time.Now()
	byQueue := map[string][]*fetched{}
	var order []string
	for _, j := range batch {
		if _, seen := byQueue[j.queue]; !seen {
			order = append(order, j.queue)
		}
		byQueue[j.queue] = append(byQueue[j.queue], j)
	}
	args := make([]any, 0, 3+2*len(order)+4*len(batch))
	args = append(args, day(now), now.Add(statsTTL).Unix(), now.Unix())
	for _, q := range order {
		js := byQueue[q]
		args = append(args, q, len(js))
		for _, j := range js {
			var keep []byte
			if j.msg.Retention > 0 {
				keep = withCompleted(j.raw, now.Unix())
			}
			args = append(args, j.id, j.msg.Retention, keep, j.msg.UniqueKey)
		}
	}
	f.redis(func(ctx context.Context) error {
		return completeJobs.Run(ctx, f.rdb, nil, args...).Err()
	})
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
		byQueue := map[string][]redis.Z{}
		until := float64(time.Now().Add(leaseFor).Unix())
		f.mu.Lock()
		for id, q := range f.running {
			byQueue[q] = append(byQueue[q], redis.Z{Score: until, Member: id})
		}
		f.mu.Unlock()
		for q, zs := range byQueue {
			if err := f.rdb.ZAddXX(ctx, "asynq:{"+q+"}:lease", zs...).Err(); err != nil && ctx.Err() == nil {
				f.logError("lease renewal", err)
			}
		}
	}
}

// subscribe delivers wake-ups to the fetcher and the due forwarder until ctx
// ends. go-redis re-subscribes by itself after a lost connection; a wake-up
// lost meanwhile costs at most one poll interval.
func subscribe(ctx context.Context, rdb redis.UniversalClient, onJob func(), onDue func(score string)) {
	ps := rdb.Subscribe(ctx, wakeChannel)
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
			if score, ok := strings.CutPrefix(m.Payload, "due:"); ok {
				onDue(score)
			} else {
				onJob()
			}
		}
	}
}

// noDequeue is a go-redis hook for the asynq server that runs the engine's
// background duties in a worker (forwarding whole-second schedules, recovering
// the jobs of lost workers, deleting expired results, the escalation digest's
// aggregation, heartbeats). errand's fetcher does all the dequeuing, so that
// server's own dequeue loop is answered "nothing pending" without asking
// Redis: it would otherwise poll every queue, one script each, all day.
type noDequeue struct{}

func (noDequeue) DialHook(next redis.DialHook) redis.DialHook { return next }

func (noDequeue) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (noDequeue) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if isAsynqDequeue(cmd.Args()) {
			cmd.SetErr(redis.Nil)
			return redis.Nil
		}
		return next(ctx, cmd)
	}
}

// isAsynqDequeue recognises asynq's dequeue script by its keys: a queue's
// pending list, paused flag, active list and lease set, in that order.
func isAsynqDequeue(args []any) bool {
	if len(args) < 7 {
		return false
	}
	if c, _ := args[0].(string); c != "evalsha" && c != "eval" {
		return false
	}
	if n, ok := args[2].(int); !ok || n != 4 {
		return false
	}
	suffixes := [4]string{"}:pending", "}:paused", "}:active", "}:lease"}
	for i, s := range suffixes {
		k, _ := args[3+i].(string)
		if len(k) < len(s) || k[len(k)-len(s):] != s {
			return false
		}
	}
	return true
}
