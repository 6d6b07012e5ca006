package main

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/queue"
	"github.com/errandhq/errand/internal/rdb"
	"github.com/errandhq/errand/jobs"
)

// workerRun is one `errand worker` that ended by itself.
type workerRun struct {
	err  error
	log  *syncBuffer
	took time.Duration
}

// runWorkerToEnd runs `errand worker` in this process with args and the
// environment environ, and waits for it to end by itself, failing the test if
// it is still running after within.
func (s *stack) runWorkerToEnd(within time.Duration, environ []string, args ...string) workerRun {
	s.t.Helper()
	log := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- run(ctx, append([]string{"worker", "--config", s.config}, args...), environ, log, log) }()
	select {
	case err := <-done:
		return workerRun{err: err, log: log, took: time.Since(start)}
	case <-time.After(within):
		cancel()
		<-done
		s.t.Fatalf("errand worker %s still running after %s:\n%s", strings.Join(args, " "), within, log.String())
	}
	return workerRun{}
}

// emailsQueue is what Redis holds on the emails queue: pending, running,
// leased, scheduled and retrying jobs.
func (s *stack) emailsQueue() (pending, active, leased, scheduled, retry int) {
	s.t.Helper()
	info, err := s.inspector().GetQueueInfo("emails")
	if err != nil {
		s.t.Fatal(err)
	}
	n, err := s.redis.Client().ZCard(context.Background(), rdb.LeaseKey("emails")).Result()
	if err != nil {
		s.t.Fatal(err)
	}
	return info.Pending, info.Active, int(n), info.Scheduled, info.Retry
}

// welcomeEmails queues n welcome emails, to u0@shop.test and on.
func (s *stack) welcomeEmails(n int) {
	s.t.Helper()
	for i := range n {
		s.enqueue("user:welcome_email", fmt.Sprintf(`{"user_id":%d,"email":"u%d@shop.test","first_name":"U%d"}`, i, i, i))
	}
}

// recipients counts the emails delivered per recipient.
func (s *stack) recipients() map[string]int {
	seen := map[string]int{}
	for _, m := range s.smtp.Messages() {
		seen[m.To[0]]++
	}
	return seen
}

// --max-jobs stops a worker after exactly N jobs, also when N falls inside
// a batch the fetcher would take (a batch of 16 free slots for N = 7; batches
// of 4 for N = 10): the worker exits 0, nothing past N is leased, no job is
// left running or waiting for a lease to end, and the next worker (with
// --stop-when-empty) delivers every other email once.
// yearlyReconciler replaces the default schedule, whose reconciler job every
// 5 minutes would count among the jobs a worker takes (--max-jobs) or logs
// when a run crosses its tick.
const yearlyReconciler = `
[[schedule]]
type = "ops:reconcile_shipments"
cron = "0 0 1 1 *"
`

func TestWorkerMaxJobsStopsMidBatchLosingNothing(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{noWorker: true, toml: welcomeAtOnce + yearlyReconciler})
	s.smtp.SetLatency(100 * time.Millisecond) // jobs overlap: the fetcher takes batches
	const n = 30
	s.welcomeEmails(n)

	delivered := 0
	for _, c := range []struct{ maxJobs, concurrency int }{{7, 16}, {10, 4}} {
		w := s.runWorkerToEnd(60*time.Second, nil, "--max-jobs", strconv.Itoa(c.maxJobs), "--concurrency", strconv.Itoa(c.concurrency))
		if w.err != nil {
			t.Fatalf("--max-jobs %d: %v\n%s", c.maxJobs, w.err, w.log.String())
		}
		delivered += c.maxJobs
		pending, active, leased, _, _ := s.emailsQueue()
		got := len(s.smtp.Messages())
		t.Logf("--max-jobs %d --concurrency %d: exited 0 in %s; %d emails delivered in all, %d pending, %d running, %d leased",
			c.maxJobs, c.concurrency, w.took.Round(time.Millisecond), got, pending, active, leased)
		if got != delivered || pending != n-delivered || active != 0 || leased != 0 {
			t.Fatalf("after --max-jobs %d: %d delivered (want %d), %d pending (want %d), %d running, %d leased (want 0)\n%s",
				c.maxJobs, got, delivered, pending, n-delivered, active, leased, w.log.String())
		}
		if len(w.log.lines("level=INFO", "stopping", fmt.Sprintf(`reason="--max-jobs %d jobs taken"`, c.maxJobs))) != 1 || len(w.log.lines("worker stopped")) != 1 {
			t.Fatalf("the log does not say why the worker stopped:\n%s", w.log.String())
		}
	}

	w := s.runWorkerToEnd(60*time.Second, nil, "--stop-when-empty")
	if w.err != nil {
		t.Fatalf("--stop-when-empty: %v\n%s", w.err, w.log.String())
	}
	seen := s.recipients()
	for to, c := range seen {
		if c > 1 {
			t.Errorf("%s got %d emails", to, c)
		}
	}
	if len(seen) != n || len(s.smtp.Messages()) != n {
		t.Fatalf("%d distinct recipients of %d, %d emails: jobs were lost or sent twice", len(seen), n, len(s.smtp.Messages()))
	}
	if f := s.failed(); len(f) != 0 {
		t.Fatalf("failed list: %v", f)
	}
	t.Logf("--stop-when-empty delivered the other %d and exited 0 in %s: %d emails to %d recipients, none twice", n-delivered, w.took.Round(time.Millisecond), n, len(seen))
}

// --stop-when-empty waits for nothing that is not due: a job scheduled an
// hour ahead and a retry an hour ahead stay where they are, and the worker
// exits 0 once the rest is done. With nothing queued at all it exits at once.
func TestWorkerStopWhenEmptyLeavesJobsDueLater(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{noWorker: true, toml: `
[jobs."user:welcome_email"]
delay = "0s"
backoff = ["1h"]
`})
	// The built binary, for its exit status.
	bin := errandBinary(t)
	start := time.Now()
	cmd, log := startBinary(t, bin, "worker", "--config", s.config, "--stop-when-empty")
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil || cmd.ProcessState.ExitCode() != 0 || len(log.lines("stopping", "--stop-when-empty")) != 1 {
			t.Fatalf("with nothing queued: %v, exit status %d\n%s", err, cmd.ProcessState.ExitCode(), log.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("with nothing queued, still running after 30 s:\n%s", log.String())
	}
	t.Logf("nothing queued: the binary exited with status 0 in %s", time.Since(start).Round(time.Millisecond))

	s.smtp.RejectRecipients("@retry.test", 451, "mailbox busy")
	s.enqueue("user:welcome_email", `{"user_id":1,"email":"later@retry.test","first_name":"L"}`)
	out, err := s.cli("enqueue", "user:welcome_email", "--payload", `{"user_id":2,"email":"later@shop.test","first_name":"L"}`, "--delay", "1h")
	if err != nil {
		t.Fatalf("enqueue --delay 1h: %v: %s", err, out)
	}
	s.welcomeEmails(5)
	w := s.runWorkerToEnd(60*time.Second, nil, "--stop-when-empty")
	if w.err != nil {
		t.Fatalf("--stop-when-empty: %v\n%s", w.err, w.log.String())
	}
	pending, active, _, scheduled, retry := s.emailsQueue()
	t.Logf("5 due, 1 scheduled in 1 h, 1 failing: exited 0 in %s; %d delivered, %d pending, %d running, %d scheduled, %d retrying",
		w.took.Round(time.Millisecond), len(s.smtp.Messages()), pending, active, scheduled, retry)
	if len(s.smtp.Messages()) != 5 || pending != 0 || active != 0 || scheduled != 1 || retry != 1 {
		t.Fatalf("want the 5 due emails delivered and the others left scheduled and retrying\n%s", w.log.String())
	}
	if len(w.log.lines("job_id=", "will retry", "retry_in=1h0m0s")) != 1 {
		t.Fatalf("the failing email was not tried once:\n%s", w.log.String())
	}
}

// --max-time stops the worker as SIGTERM does: the job running when the
// time is up finishes (its email goes out once), then the worker exits 0.
func TestWorkerMaxTimeLetsTheRunningJobFinish(t *testing.T) {
	s := startStack(t, stackOptions{noWorker: true, toml: welcomeAtOnce})
	s.smtp.SetLatency(3 * time.Second)
	s.welcomeEmails(1)
	w := s.runWorkerToEnd(30*time.Second, nil, "--max-time", "1s")
	if w.err != nil {
		t.Fatalf("--max-time 1s: %v\n%s", w.err, w.log.String())
	}
	if len(w.log.lines("stopping", `reason="--max-time 1s has passed"`)) != 1 {
		t.Fatalf("the log does not say why the worker stopped:\n%s", w.log.String())
	}
	// The email was in flight when the time was up: it went out before the
	// worker exited, and the job is done, not put back.
	pending, active, leased, _, _ := s.emailsQueue()
	if got := len(s.smtp.Messages()); got != 1 || pending != 0 || active != 0 || leased != 0 {
		t.Fatalf("%d emails delivered by exit (want 1), %d pending, %d running, %d leased\n%s", got, pending, active, leased, w.log.String())
	}
	if len(w.log.lines("job done", "type=user:welcome_email")) != 1 {
		t.Fatalf("no job done line:\n%s", w.log.String())
	}
	t.Logf("--max-time 1s with a 3 s email in flight: exited 0 after %s, the email delivered", w.took.Round(time.Millisecond))
}

// A bad value for a lifetime flag is one line naming the flag and the value,
// and nothing starts.
func TestWorkerLifetimeFlagsRefuseBadValues(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{noWorker: true})
	for _, args := range [][]string{
		{"--max-jobs", "0"}, {"--max-jobs", "-3"}, {"--max-jobs", "ten"}, {"--max-jobs", "1.5"},
		{"--max-time", "0s"}, {"--max-time", "-5m"}, {"--max-time", "30"}, {"--max-time", "soon"},
	} {
		w := s.runWorkerToEnd(10*time.Second, nil, args...)
		if w.err == nil {
			t.Fatalf("errand worker %s started", strings.Join(args, " "))
		}
		msg := w.err.Error()
		if strings.Contains(msg, "\n") || !strings.Contains(msg, args[0]) || !strings.Contains(msg, strconv.Quote(args[1])) {
			t.Errorf("errand worker %s: %q, want one line naming the flag and the value", strings.Join(args, " "), msg)
		}
		if w.log.String() != "" {
			t.Errorf("errand worker %s wrote %q before refusing", strings.Join(args, " "), w.log.String())
		}
	}
	w := s.runWorkerToEnd(10*time.Second, nil, "--max-jobs", "x")
	t.Logf("errand worker --max-jobs x: errand: %v", w.err)
}

// summaryLine matches the worker's summary of the jobs done without a line
// of their own.
var summaryLine = regexp.MustCompile(`msg="jobs done, too many for a line each[^"]*" jobs=(\d+)`)

// At the default log level a person watching the worker sees each job done
// while few are done a second; while thousands are, the log says how many
// in a summary line instead of a line each, and every job is accounted for.
func TestWorkerLogShowsSuccessesAtInfo(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{noWorker: true, toml: welcomeAtOnce + yearlyReconciler})
	info := []string{"ERRAND_LOG__LEVEL=info"}
	s.welcomeEmails(3)
	w := s.runWorkerToEnd(60*time.Second, info, "--stop-when-empty")
	if w.err != nil {
		t.Fatal(w.err)
	}
	if done := w.log.lines("level=INFO", `msg="job done"`, "type=user:welcome_email"); len(done) != 3 || len(w.log.lines("jobs done")) != 0 {
		t.Fatalf("want 3 job done lines at INFO and no summary:\n%s", w.log.String())
	}
	t.Logf("3 emails: %s", w.log.lines("job done")[0])

	const n = 3000
	s.pushNoops(n)
	w = s.runWorkerToEnd(120*time.Second, info, "--stop-when-empty")
	if w.err != nil {
		t.Fatal(w.err)
	}
	lines, summarised := len(w.log.lines("level=INFO", `msg="job done"`, "type=ops:noop")), 0
	summaries := w.log.lines("level=INFO", "jobs done, too many")
	for _, l := range summaries {
		m := summaryLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("summary line %q", l)
		}
		k, _ := strconv.Atoi(m[1])
		summarised += k
	}
	t.Logf("%d no-op jobs in %s: %d lines of their own, %d in %d summary lines: %q", n, w.took.Round(time.Millisecond), lines, summarised, len(summaries), summaries)
	if lines+summarised != n || len(summaries) == 0 {
		t.Fatalf("%d lines + %d summarised, want %d with a summary\n%s", lines, summarised, n, w.log.String())
	}
}

// pushNoops queues n no-op jobs at once.
func (s *stack) pushNoops(n int) {
	s.t.Helper()
	cfg, err := config.Load(s.config, true, nil, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	reg := job.NewRegistry(cfg)
	jobs.Register(reg)
	if err := reg.Configure(cfg.Jobs); err != nil {
		s.t.Fatal(err)
	}
	es := make([]job.Envelope, n)
	for i := range es {
		if es[i], err = reg.Prepare(jobs.Noop{}); err != nil {
			s.t.Fatal(err)
		}
	}
	for i, err := range queue.NewClient(reg, s.redis.Client()).EnqueueMany(context.Background(), es) {
		if err != nil {
			s.t.Fatalf("job %d: %v", i, err)
		}
	}
}
