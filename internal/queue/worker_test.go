package queue_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/queue"
	"github.com/errandhq/errand/internal/redistest"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// probe is a job type that records when each job started.
type probe struct {
	N     int    `json:"n"`
	Queue string `json:"queue"`
}

func (probe) Kind() string { return "test:probe" }
func (probe) Defaults() job.Defaults {
	return job.Defaults{Queue: "emails", Backoff: []time.Duration{time.Second}}
}

type recorder struct {
	mu      sync.Mutex
	starts  map[int]time.Time
	order   []probe
	delay   time.Duration
	byAsynq int // jobs handed over by asynq's own processor, not errand's fetcher
}

func (r *recorder) work(ctx context.Context, p probe) error {
	now := time.Now()
	_, fromAsynq := asynq.GetTaskID(ctx)
	r.mu.Lock()
	r.starts[p.N] = now
	r.order = append(r.order, p)
	if fromAsynq {
		r.byAsynq++
	}
	r.mu.Unlock()
	if r.delay > 0 {
		time.Sleep(r.delay)
	}
	return nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.order)
}

type harness struct {
	cfg *config.Config
	reg *job.Registry
	rec *recorder
	rs  *redistest.Server
	c   redis.UniversalClient // what the worker and the client run on
	cli *queue.Client
}

func newHarness(t *testing.T, mutate func(*config.Config)) *harness {
	t.Helper()
	rs := redistest.Start(t)
	// Every script the worker and the client run must be fit for Redis
	// Cluster.
	rs.Client().AddHook(redistest.SlotCheck(t))
	return newHarnessOn(t, rs, rs.Client(), mutate)
}

func newHarnessOn(t *testing.T, rs *redistest.Server, c redis.UniversalClient, mutate func(*config.Config)) *harness {
	t.Helper()
	cfg, err := config.Load("", false, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Redis.Addr = rs.Addr()
	cfg.Escalation.Window = time.Second
	if mutate != nil {
		mutate(cfg)
	}
	rec := &recorder{starts: map[int]time.Time{}}
	reg := job.NewRegistry(cfg)
	job.Register(reg, rec.work)
	if err := reg.Configure(cfg.Jobs); err != nil {
		t.Fatal(err)
	}
	return &harness{cfg: cfg, reg: reg, rec: rec, rs: rs, c: c, cli: queue.NewClient(reg, c)}
}

func (h *harness) startWorker(t *testing.T) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	policy := queue.NewPolicy(queue.PolicyConfig{Registry: h.reg, Log: log})
	w, err := queue.NewWorker(h.cfg, h.c, log, queue.WorkerOptions{Policy: policy})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker: %v", err)
		}
	})
}

func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// asynq keeps due times in whole seconds and may start a job up to a second
// early; errand's jobs never start before their exact due instant.
func TestDelayedJobsNeverStartEarly(t *testing.T) {
	h := newHarness(t, nil)
	h.startWorker(t)
	const n = 60
	due := map[int]time.Time{}
	for i := range n {
		d := 1500*time.Millisecond + time.Duration(rand.IntN(2500))*time.Millisecond
		e, err := h.cli.Later(context.Background(), d, probe{N: i})
		if err != nil {
			t.Fatal(err)
		}
		due[i] = e.DueAt
	}
	waitUntil(t, 20*time.Second, "every delayed job to run", func() bool { return h.rec.count() == n })
	var lateness []time.Duration
	h.rec.mu.Lock()
	for i, start := range h.rec.starts {
		late := start.Sub(due[i])
		if late < 0 {
			t.Errorf("job %d started %s early", i, -late)
		}
		lateness = append(lateness, late)
	}
	h.rec.mu.Unlock()
	slices.Sort(lateness)
	t.Logf("%d delayed jobs: lateness min %s, p50 %s, max %s (none early)", n,
		lateness[0], lateness[len(lateness)/2], lateness[len(lateness)-1])
}

func enqueueBoth(t *testing.T, h *harness, each int) {
	t.Helper()
	for i := range each {
		for _, q := range []string{"crm", "emails"} {
			if _, err := h.cli.Push(context.Background(), probe{N: i, Queue: q}, job.OnQueue(q)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// --queues emails,crm works emails first, as think-queue's --queue a,b does.
func TestWorkerQueuesInPriorityOrder(t *testing.T) {
	h := newHarness(t, func(c *config.Config) {
		c.Worker.Queues = "emails,crm"
		c.Worker.Concurrency = 1
	})
	enqueueBoth(t, h, 30)
	h.startWorker(t)
	waitUntil(t, 20*time.Second, "60 jobs", func() bool { return h.rec.count() == 60 })
	h.rec.mu.Lock()
	defer h.rec.mu.Unlock()
	for i, p := range h.rec.order {
		want := "emails"
		if i >= 30 {
			want = "crm"
		}
		if p.Queue != want {
			t.Fatalf("job #%d came from %s, want %s: emails must be drained before crm", i+1, p.Queue, want)
		}
	}
}

// --queues emails:3,crm:1 shares by weight: emails gets about three jobs in
// four, and crm is not starved.
func TestWorkerQueuesByWeight(t *testing.T) {
	h := newHarness(t, func(c *config.Config) {
		c.Worker.Queues = "emails:3,crm:1"
		c.Worker.Concurrency = 1
	})
	enqueueBoth(t, h, 100)
	h.startWorker(t)
	waitUntil(t, 30*time.Second, "the first 40 jobs", func() bool { return h.rec.count() >= 40 })
	h.rec.mu.Lock()
	emails := 0
	for _, p := range h.rec.order[:40] {
		if p.Queue == "emails" {
			emails++
		}
	}
	h.rec.mu.Unlock()
	t.Logf("of the first 40 jobs, %d came from emails (weight 3) and %d from crm (weight 1)", emails, 40-emails)
	if emails < 22 || emails > 38 {
		t.Fatalf("emails got %d of 40 jobs; weights 3:1 should give about 30", emails)
	}
}

// Jobs put into Redis by another program (a plain asynq client: no wake-up,
// whole-second schedule) still run: the idle worker looks on its own every
// poll interval, and the due forwarder scans the scheduled sets.
func TestJobsQueuedByOtherProgramsRun(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.Worker.PollInterval = 300 * time.Millisecond })
	h.startWorker(t)
	ac := asynq.NewClientFromRedisClient(h.rs.Client())
	now := time.Now()
	if _, err := ac.Enqueue(asynq.NewTask("test:probe", []byte(`{"n":1}`)), asynq.Queue("emails")); err != nil {
		t.Fatal(err)
	}
	due := now.Add(1500 * time.Millisecond)
	if _, err := ac.Enqueue(asynq.NewTask("test:probe", []byte(`{"n":2}`)), asynq.Queue("emails"), asynq.ProcessAt(due)); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "both jobs", func() bool { return h.rec.count() == 2 })
	h.rec.mu.Lock()
	defer h.rec.mu.Unlock()
	t.Logf("immediate job started after %s; delayed job %s after its due time", h.rec.starts[1].Sub(now).Round(time.Millisecond), h.rec.starts[2].Sub(due).Round(time.Millisecond))
	if h.rec.starts[2].Before(due.Truncate(time.Second)) {
		t.Fatalf("the delayed job started %s before its (whole-second) due time", due.Truncate(time.Second).Sub(h.rec.starts[2]))
	}
}

// An idle worker does not poll for work: with its safety poll an hour apart,
// a job queued by errand still starts, woken by the enqueue itself.
func TestIdleWorkerIsWokenByEnqueue(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.Worker.PollInterval = time.Hour })
	h.startWorker(t)
	time.Sleep(300 * time.Millisecond) // the worker's first look has found nothing
	for i := range 3 {
		if _, err := h.cli.Push(context.Background(), probe{N: i}); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, 10*time.Second, "the job to start", func() bool { return h.rec.count() == i+1 })
		time.Sleep(100 * time.Millisecond) // idle again
	}
}

// errand writes jobs in asynq's layout: asynq's inspector (and so the
// dashboard) reads what errand queued, and what its fetcher recorded.
func TestJobsReadableByAsynqInspector(t *testing.T) {
	h := newHarness(t, nil)
	ins := asynq.NewInspectorFromRedisClient(h.rs.Client())
	ctx := context.Background()
	later, err := h.cli.Later(ctx, time.Hour, probe{N: 1})
	if err != nil {
		t.Fatal(err)
	}
	info, err := ins.GetTaskInfo(later.Queue, later.ID)
	if err != nil {
		t.Fatal(err)
	}
	if info.State != asynq.TaskStateScheduled || info.Type != "test:probe" || string(info.Payload) != `{"n":1,"queue":""}` ||
		info.Queue != "emails" || info.Retention != 24*time.Hour || info.Timeout <= 0 {
		t.Fatalf("scheduled job as asynq reads it: %+v", info)
	}
	if want := later.DueAt.Truncate(time.Second); !info.NextProcessAt.Equal(want) {
		t.Fatalf("next process at %s, want %s (the due second)", info.NextProcessAt, want)
	}
	if _, err := h.cli.Push(ctx, probe{N: 2}); err != nil {
		t.Fatal(err)
	}
	h.startWorker(t)
	waitUntil(t, 10*time.Second, "the job", func() bool { return h.rec.count() == 1 })
	waitUntil(t, 5*time.Second, "the job's completion to be recorded", func() bool {
		done, err := ins.ListCompletedTasks("emails")
		return err == nil && len(done) == 1 && done[0].CompletedAt.After(time.Now().Add(-time.Minute))
	})
	qi, err := ins.GetQueueInfo("emails")
	if err != nil {
		t.Fatal(err)
	}
	if qi.Processed != 1 || qi.Scheduled != 1 || qi.Active != 0 || qi.Pending != 0 {
		t.Fatalf("queue as asynq reads it: %+v", qi)
	}
}

// countDequeues is a go-redis hook that counts asynq's dequeue script (a
// queue's pending list, paused flag, active list and lease set, in that
// order: asynq's own keys, whatever its script's text) passing through it.
type countDequeues struct{ n atomic.Int64 }

func (h *countDequeues) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *countDequeues) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *countDequeues) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		a := cmd.Args()
		if name, _ := a[0].(string); (name == "evalsha" || name == "eval") && len(a) >= 7 && fmt.Sprint(a[2]) == "4" &&
			strings.HasSuffix(fmt.Sprint(a[3]), "}:pending") && strings.HasSuffix(fmt.Sprint(a[6]), "}:lease") {
			h.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

// A worker given a client of another kind than *redis.Client (a Ring here)
// still silences the dequeue of the asynq server it runs: asynq's processor
// asks, and nothing reaches Redis. Every job runs through errand's fetcher.
func TestWorkerSilencesAsynqOnAnyClient(t *testing.T) {
	rs := redistest.Start(t)
	ring := rs.Ring()
	ring.AddHook(redistest.SlotCheck(t))
	asked := &countDequeues{}
	ring.AddHook(asked) // outside the worker's silencer: sees every dequeue
	h := newHarnessOn(t, rs, ring, func(c *config.Config) { c.Worker.PollInterval = 200 * time.Millisecond })
	enqueueBoth(t, h, 10)
	sent := &countDequeues{}
	h.startWorker(t)
	ring.AddHook(sent) // inside it: sees only what reaches Redis
	waitUntil(t, 20*time.Second, "asynq's processor to ask for jobs, twice", func() bool { return asked.n.Load() >= 2 })
	waitUntil(t, 20*time.Second, "the 20 jobs", func() bool { return h.rec.count() == 20 })
	if n := sent.n.Load(); n != 0 {
		t.Fatalf("%d of asynq's dequeues reached Redis", n)
	}
	h.rec.mu.Lock()
	defer h.rec.mu.Unlock()
	if h.rec.byAsynq != 0 {
		t.Fatalf("asynq's processor ran %d jobs", h.rec.byAsynq)
	}
}

// The whole worker runs on Redis Cluster (a real one, of one node): jobs
// queued now, later and by asynq's own client all run.
func TestWorkerOnRedisCluster(t *testing.T) {
	rs := redistest.Start(t, redistest.Cluster())
	c := rs.ClusterClient()
	c.AddHook(redistest.SlotCheck(t))
	h := newHarnessOn(t, rs, c, func(c *config.Config) { c.Worker.PollInterval = 200 * time.Millisecond })
	h.startWorker(t)
	enqueueBoth(t, h, 5)
	if _, err := h.cli.Later(context.Background(), 500*time.Millisecond, probe{N: 100}); err != nil {
		t.Fatal(err)
	}
	ac := asynq.NewClientFromRedisClient(c)
	if _, err := ac.Enqueue(asynq.NewTask("test:probe", []byte(`{"n":101}`)), asynq.Queue("crm")); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 20*time.Second, "the 12 jobs", func() bool { return h.rec.count() == 12 })
}
