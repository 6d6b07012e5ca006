package rdb_test

// The contract with asynq: errand's scripts write asynq's private layout, and
// asynq's code reads it; asynq's code writes it, and errand's scripts and
// Inspector read it. Every state a job passes through is driven one way and
// read the other. When asynq is upgraded, these tests say what changed; the
// upgrade checklist is in TestAsynqVersionIsTheOneMirrored.

import (
	"bufio"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/rdb"
	"github.com/errandhq/errand/internal/redistest"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// go.mod's asynq must be the release internal/rdb mirrors. Upgrading asynq
// means, before changing rdb.AsynqVersion:
//
//  1. diff the new release's internal/rdb/rdb.go against the scripts named
//     in rdb's comments and lua/ files (enqueueCmd, scheduleCmd, dequeueCmd,
//     doneCmd, markAsCompleteCmd, retryCmd, archiveCmd, requeueCmd,
//     forwardCmd, ExtendLease) and internal/base/base.go's key builders
//     against keys.go;
//  2. diff internal/proto/asynq.proto's TaskMessage field numbers against
//     internal/rdb/taskmsg;
//  3. copy the new dequeueCmd into silence.go (asynqDequeue) if it changed;
//  4. check LeaseDuration, statsTTL and the archive limits in rdb.go;
//  5. run this package's tests: each state is read back through asynq's
//     Inspector and written by asynq's client and server.
func TestAsynqVersionIsTheOneMirrored(t *testing.T) {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the package")
		}
		dir = parent
	}
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const mod = "github.com/hibiken/asynq"
	var required string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "require "))
		if len(fields) == 0 {
			continue
		}
		if fields[0] == "replace" || (len(fields) > 1 && fields[1] == "=>") {
			if strings.Contains(sc.Text(), mod+" ") {
				t.Errorf("go.mod replaces %s (%q): the layout mirrored is %s's, check it by hand", mod, sc.Text(), rdb.AsynqVersion)
			}
			continue
		}
		if fields[0] == mod && len(fields) > 1 {
			required = fields[1]
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if required != rdb.AsynqVersion {
		t.Fatalf("go.mod requires %s %s, but internal/rdb mirrors asynq %s's Redis layout: "+
			"follow the upgrade checklist above this test, then set rdb.AsynqVersion", mod, required, rdb.AsynqVersion)
	}
}

// newRedis starts Redis with a client whose every script is checked for
// Redis Cluster (redistest.SlotCheck).
func newRedis(t *testing.T) (*redistest.Server, *rdb.RDB, *asynq.Inspector) {
	t.Helper()
	rs := redistest.Start(t)
	rs.Client().AddHook(redistest.SlotCheck(t))
	return rs, rdb.New(rs.Client()), asynq.NewInspectorFromRedisClient(rs.Client())
}

func newTask(id string) rdb.Task {
	return rdb.Task{ID: id, Type: "test:job", Queue: "emails", Payload: []byte(`{"n":1}`),
		Headers: map[string]string{"errand-queued-ms": "1700000000000"},
		Retry:   1 << 20, Timeout: 65 * time.Second, Retention: 24 * time.Hour}
}

func taskInfo(t *testing.T, ins *asynq.Inspector, q, id string) *asynq.TaskInfo {
	t.Helper()
	info, err := ins.GetTaskInfo(q, id)
	if err != nil {
		t.Fatalf("asynq's inspector, task %s on %s: %v", id, q, err)
	}
	return info
}

func wantState(t *testing.T, ins *asynq.Inspector, q, id string, want asynq.TaskState) *asynq.TaskInfo {
	t.Helper()
	info := taskInfo(t, ins, q, id)
	if info.State != want {
		t.Fatalf("task %s: asynq reads state %s, want %s", id, info.State, want)
	}
	return info
}

// fetch takes what one queue has, up to n.
func fetch(t *testing.T, r *rdb.RDB, q string, n int, leaseEnd time.Time) rdb.Taken {
	t.Helper()
	taken, err := r.Fetch(context.Background(), []rdb.Take{{Queue: q, N: n}}, leaseEnd)
	if err != nil {
		t.Fatal(err)
	}
	return taken[0]
}

// Each state errand's scripts put a job in is the state asynq reads, with
// the fields asynq shows in its inspector and dashboard.
func TestErrandStatesReadByAsynq(t *testing.T) {
	ctx := context.Background()
	rs, r, ins := newRedis(t)

	// Pending: queued now. The queue joins asynq's set of queues.
	if err := r.Enqueue(ctx, newTask("now")); err != nil {
		t.Fatal(err)
	}
	info := wantState(t, ins, "emails", "now", asynq.TaskStatePending)
	if info.Type != "test:job" || string(info.Payload) != `{"n":1}` || info.Headers["errand-queued-ms"] != "1700000000000" ||
		info.MaxRetry != 1<<20 || info.Timeout != 65*time.Second || info.Retention != 24*time.Hour {
		t.Fatalf("pending job as asynq reads it: %+v", info)
	}
	if qs, err := ins.Queues(); err != nil || len(qs) != 1 || qs[0] != "emails" {
		t.Fatalf("asynq's queues: %v, %v", qs, err)
	}
	if err := r.Enqueue(ctx, newTask("now")); !errors.Is(err, rdb.ErrDuplicate) {
		t.Fatalf("the same id again: %v, want ErrDuplicate", err)
	}

	// Scheduled: queued for later, scored at the millisecond; asynq reads
	// the second.
	due := time.Now().Add(time.Hour).Truncate(time.Second).Add(250 * time.Millisecond)
	later := newTask("later")
	later.DueAt = due
	if err := r.Enqueue(ctx, later); err != nil {
		t.Fatal(err)
	}
	info = wantState(t, ins, "emails", "later", asynq.TaskStateScheduled)
	if !info.NextProcessAt.Equal(due.Truncate(time.Second)) {
		t.Fatalf("scheduled job: asynq's next process at %s, want %s", info.NextProcessAt, due.Truncate(time.Second))
	}

	// Active, with a lease asynq's recoverer reads.
	leaseEnd := time.Now().Add(rdb.LeaseDuration)
	got := fetch(t, r, "emails", 10, leaseEnd)
	if len(got.Jobs) != 1 || got.Jobs[0].ID != "now" || got.Left != 0 || got.Jobs[0].Msg.Type != "test:job" {
		t.Fatalf("fetched %+v", got)
	}
	job := got.Jobs[0]
	wantState(t, ins, "emails", "now", asynq.TaskStateActive)
	if lease, err := rs.Client().ZScore(ctx, rdb.LeaseKey("emails"), "now").Result(); err != nil || int64(lease) != leaseEnd.Unix() {
		t.Fatalf("lease of the active job: %v, %v; want %d", lease, err, leaseEnd.Unix())
	}

	// Retry: a failure that counts, due in an hour.
	if err := r.Retry(ctx, job, "boom", true, due); err != nil {
		t.Fatal(err)
	}
	info = wantState(t, ins, "emails", "now", asynq.TaskStateRetry)
	if info.Retried != 1 || info.LastErr != "boom" || time.Since(info.LastFailedAt) > time.Minute ||
		!info.NextProcessAt.Equal(due.Truncate(time.Second)) {
		t.Fatalf("retrying job as asynq reads it: %+v", info)
	}
	qi, err := ins.GetQueueInfo("emails")
	if err != nil || qi.Processed != 1 || qi.Failed != 1 || qi.ProcessedTotal != 1 || qi.FailedTotal != 1 || qi.Retry != 1 || qi.Scheduled != 1 {
		t.Fatalf("queue after a failure as asynq reads it: %+v, %v", qi, err)
	}

	// Both due: forwarded to pending, as asynq's forwarder would.
	moved, next, err := r.ForwardDue(ctx, []string{"emails"}, due.Add(time.Second), 100)
	if err != nil || moved != 2 || !next.IsZero() {
		t.Fatalf("forwarded %d, next %s, %v; want 2, none", moved, next, err)
	}
	wantState(t, ins, "emails", "now", asynq.TaskStatePending)
	wantState(t, ins, "emails", "later", asynq.TaskStatePending)

	// Failed for good (archived), and completed.
	got = fetch(t, r, "emails", 10, time.Now().Add(rdb.LeaseDuration))
	if len(got.Jobs) != 2 {
		t.Fatalf("fetched %d jobs, want 2", len(got.Jobs))
	}
	byID := map[string]*rdb.Fetched{}
	for _, j := range got.Jobs {
		byID[j.ID] = j
	}
	if byID["now"].Msg.Retried != 1 {
		t.Fatalf("the retried job's message says %d failures, want 1", byID["now"].Msg.Retried)
	}
	if err := r.Archive(ctx, byID["now"], "gave up"); err != nil {
		t.Fatal(err)
	}
	info = wantState(t, ins, "emails", "now", asynq.TaskStateArchived)
	if info.LastErr != "gave up" || info.Retried != 1 {
		t.Fatalf("failed job as asynq reads it: %+v", info)
	}
	if err := r.Complete(ctx, []*rdb.Fetched{byID["later"]}); err != nil {
		t.Fatal(err)
	}
	info = wantState(t, ins, "emails", "later", asynq.TaskStateCompleted)
	if time.Since(info.CompletedAt) > time.Minute || info.Retention != 24*time.Hour {
		t.Fatalf("completed job as asynq reads it: %+v", info)
	}

	// Completed with no retention: gone.
	gone := newTask("gone")
	gone.Retention = 0
	if err := r.Enqueue(ctx, gone); err != nil {
		t.Fatal(err)
	}
	got = fetch(t, r, "emails", 1, time.Now().Add(rdb.LeaseDuration))
	if err := r.Complete(ctx, got.Jobs); err != nil {
		t.Fatal(err)
	}
	if _, err := ins.GetTaskInfo("emails", "gone"); !errors.Is(err, asynq.ErrTaskNotFound) {
		t.Fatalf("a completed job with no retention: %v, want asynq.ErrTaskNotFound", err)
	}

	// Requeued at shutdown: pending again, the attempt not counted.
	if err := r.Enqueue(ctx, newTask("stopped")); err != nil {
		t.Fatal(err)
	}
	got = fetch(t, r, "emails", 1, time.Now().Add(rdb.LeaseDuration))
	if err := r.Requeue(ctx, got.Jobs[0]); err != nil {
		t.Fatal(err)
	}
	if info = wantState(t, ins, "emails", "stopped", asynq.TaskStatePending); info.Retried != 0 {
		t.Fatalf("requeued job counts %d failures", info.Retried)
	}

	qi, err = ins.GetQueueInfo("emails")
	if err != nil || qi.Processed != 4 || qi.Failed != 2 || qi.Archived != 1 || qi.Completed != 1 || qi.Pending != 1 || qi.Active != 0 {
		t.Fatalf("queue at the end as asynq reads it: %+v, %v", qi, err)
	}
}

// silencedServer runs an asynq server over c with its dequeue silenced, as a
// worker runs it; it records any job it is handed.
func silencedServer(t *testing.T, c redis.UniversalClient, silence bool) (*rdb.Silencer, *atomic.Int64) {
	t.Helper()
	var s *rdb.Silencer
	if silence {
		s = rdb.SilenceAsynqDequeue(c)
	}
	var took atomic.Int64
	srv := asynq.NewServerFromRedisClient(c, asynq.Config{
		Concurrency: 2, Queues: map[string]int{"emails": 1},
		TaskCheckInterval: 100 * time.Millisecond, LogLevel: asynq.FatalLevel,
		RetryDelayFunc: func(int, error, *asynq.Task) time.Duration { return time.Hour },
	})
	if err := srv.Start(asynq.HandlerFunc(func(context.Context, *asynq.Task) error {
		took.Add(1)
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	return s, &took
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// An asynq server whose dequeue is silenced takes no job, whatever kind of
// go-redis client it runs on (here a Ring, not a *redis.Client); without the
// silencer the same server takes it, so the test can fail.
func TestSilencedAsynqServerTakesNoJob(t *testing.T) {
	for _, silence := range []bool{true, false} {
		name := map[bool]string{true: "silenced", false: "not silenced"}[silence]
		t.Run(name, func(t *testing.T) {
			rs := redistest.Start(t)
			ring := rs.Ring()
			ring.AddHook(redistest.SlotCheck(t))
			ac := asynq.NewClientFromRedisClient(rs.Client())
			if _, err := ac.Enqueue(asynq.NewTask("test:job", nil), asynq.Queue("emails"), asynq.TaskID("waiting")); err != nil {
				t.Fatal(err)
			}
			s, took := silencedServer(t, ring, silence)
			if !silence {
				waitFor(t, "the server to take the job", func() bool { return took.Load() == 1 })
				return
			}
			// Asked, and answered "nothing", several times.
			waitFor(t, "asynq's processor to ask for jobs", func() bool { return s.Answered() >= 3 })
			if took.Load() != 0 {
				t.Fatal("the silenced server ran a job")
			}
			wantState(t, asynq.NewInspectorFromRedisClient(rs.Client()), "emails", "waiting", asynq.TaskStatePending)
		})
	}
}

// A worker that crashed leaves its job active with a lease that runs out;
// asynq's recoverer puts it back to retry, counting the lost attempt, and
// errand's forwarder and fetcher then run it with that count.
func TestJobOfACrashedWorkerIsRecovered(t *testing.T) {
	ctx := context.Background()
	rs, r, ins := newRedis(t)
	if err := r.Enqueue(ctx, newTask("crashed")); err != nil {
		t.Fatal(err)
	}
	got := fetch(t, r, "emails", 1, time.Now().Add(rdb.LeaseDuration))
	if len(got.Jobs) != 1 {
		t.Fatal("nothing fetched")
	}
	// The worker is gone: its lease ended long enough ago for the recoverer.
	if err := r.ExtendLeases(ctx, map[string][]string{"emails": {"crashed"}}, time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	ring := rs.Ring()
	ring.AddHook(redistest.SlotCheck(t))
	silencedServer(t, ring, true)
	waitFor(t, "asynq's recoverer to put the job back", func() bool {
		info, err := ins.GetTaskInfo("emails", "crashed")
		return err == nil && info.State == asynq.TaskStateRetry
	})
	info := taskInfo(t, ins, "emails", "crashed")
	if info.Retried != 1 || !strings.Contains(info.LastErr, "lease expired") {
		t.Fatalf("recovered job: %+v", info)
	}
	j, err := rdb.NewInspector(rs.Client(), nil).Job(ctx, "crashed", "emails")
	if err != nil || j.State != rdb.StateRetrying || j.Attempts != 1 {
		t.Fatalf("errand reads the recovered job as %+v, %v", j, err)
	}
	if moved, _, err := r.ForwardDue(ctx, []string{"emails"}, time.Now().Add(2*time.Hour), 100); err != nil || moved != 1 {
		t.Fatalf("forwarded %d, %v", moved, err)
	}
	got = fetch(t, r, "emails", 1, time.Now().Add(rdb.LeaseDuration))
	if len(got.Jobs) != 1 || got.Jobs[0].Msg.Retried != 1 {
		t.Fatalf("fetched after recovery: %+v", got.Jobs)
	}
}

// What asynq's client and inspector write, errand's Inspector reads with the
// one state mapping, and errand's scripts move and take.
func TestAsynqStatesReadByErrand(t *testing.T) {
	ctx := context.Background()
	rs, r, ains := newRedis(t)
	ac := asynq.NewClientFromRedisClient(rs.Client())
	ins := rdb.NewInspector(rs.Client(), func(typ string) int {
		if typ == "test:capped" {
			return 1
		}
		return 0
	})
	enqueue := func(id string, opts ...asynq.Option) {
		t.Helper()
		opts = append(opts, asynq.Queue("emails"), asynq.TaskID(id))
		task := asynq.NewTaskWithHeaders("test:job", []byte(`{"id":"`+id+`"}`), map[string]string{"h": id})
		if _, err := ac.Enqueue(task, opts...); err != nil {
			t.Fatal(err)
		}
	}
	state := func(id, want string) rdb.Job {
		t.Helper()
		j, err := ins.Job(ctx, id)
		if err != nil || j.State != want {
			t.Fatalf("job %s: errand reads %+v, %v; want state %s", id, j, err, want)
		}
		return j
	}

	soon := time.Now().Add(2 * time.Second)
	enqueue("pending", asynq.MaxRetry(3), asynq.Timeout(10*time.Second), asynq.Retention(time.Hour))
	enqueue("scheduled", asynq.ProcessAt(soon))
	enqueue("grouped", asynq.Group("g"))
	enqueue("scheduled-grouped", asynq.ProcessAt(soon), asynq.Group("g"))
	enqueue("unique", asynq.Unique(time.Hour))
	enqueue("archived")
	if err := ains.ArchiveTask("emails", "archived"); err != nil {
		t.Fatal(err)
	}

	if j := state("pending", rdb.StatePending); j.Attempts != 0 || j.NextRunAt.IsZero() || j.Headers["h"] != "pending" {
		t.Fatalf("pending: %+v", j)
	}
	if j := state("scheduled", rdb.StateScheduled); !j.NextRunAt.Equal(soon.Truncate(time.Second)) {
		t.Fatalf("scheduled: next run %s, want %s", j.NextRunAt, soon.Truncate(time.Second))
	}
	state("grouped", rdb.StatePending) // aggregating in a group: still to run
	state("scheduled-grouped", rdb.StateScheduled)
	if j := state("archived", rdb.StateFailed); j.Attempts != 1 || j.Alive() {
		t.Fatalf("archived: %+v", j)
	}
	failed, err := ins.Failed(ctx, "emails")
	if err != nil || len(failed) != 1 || failed[0].ID != "archived" {
		t.Fatalf("failed list: %+v, %v", failed, err)
	}
	if _, err := ins.FindFailed(ctx, "pending"); !errors.Is(err, rdb.ErrNotFound) {
		t.Fatalf("a pending job found in the failed list: %v", err)
	}
	if _, err := ins.Job(ctx, "nope"); !errors.Is(err, rdb.ErrNotFound) {
		t.Fatalf("an unknown job: %v", err)
	}
	if alive, err := ins.Alive(ctx, "emails", "pending"); err != nil || !alive {
		t.Fatalf("pending job alive: %v, %v", alive, err)
	}

	// errand's fetch takes what asynq queued and reads its message.
	got := fetch(t, r, "emails", 10, time.Now().Add(rdb.LeaseDuration))
	byID := map[string]*rdb.Fetched{}
	for _, j := range got.Jobs {
		if j.Bad != nil {
			t.Fatalf("%s: %v", j.ID, j.Bad)
		}
		byID[j.ID] = j
	}
	if len(byID) != 2 || byID["pending"] == nil || byID["unique"] == nil {
		t.Fatalf("fetched %v, want pending and unique (grouped jobs wait for their group)", got.Jobs)
	}
	m := byID["pending"].Msg
	if m.Type != "test:job" || string(m.Payload) != `{"id":"pending"}` || m.Headers["h"] != "pending" ||
		m.Retry != 3 || m.Timeout != 10 || m.Retention != 3600 || m.Queue != "emails" || m.ID != "pending" {
		t.Fatalf("asynq's message as errand reads it: %+v", m)
	}
	if j := state("pending", rdb.StateRunning); j.Attempts != 1 || !j.NextRunAt.IsZero() {
		t.Fatalf("running: %+v", j)
	}

	// Completing a unique job releases its lock, as asynq's done does: the
	// same task can be queued again.
	lock := byID["unique"].Msg.UniqueKey
	if lock == "" {
		t.Fatal("the unique job's message has no lock")
	}
	if err := r.Complete(ctx, []*rdb.Fetched{byID["pending"], byID["unique"]}); err != nil {
		t.Fatal(err)
	}
	if n, _ := rs.Client().Exists(ctx, lock).Result(); n != 0 {
		t.Fatalf("the uniqueness lock %s is still held", lock)
	}
	if j := state("pending", rdb.StateCompleted); j.CompletedAt.IsZero() || j.Attempts != 1 {
		t.Fatalf("completed: %+v", j)
	}
	if _, err := ac.Enqueue(asynq.NewTask("test:job", []byte(`{"id":"unique"}`)), asynq.Queue("emails"), asynq.Unique(time.Hour)); err != nil {
		t.Fatalf("the unique task again: %v", err)
	}

	// errand's forwarder moves asynq's scheduled tasks when due, as asynq's
	// forwarder does: to pending (a task scheduled with a group was stored
	// without it, so it joins no group).
	if moved, _, err := r.ForwardDue(ctx, []string{"emails"}, soon.Add(time.Second), 100); err != nil || moved != 2 {
		t.Fatalf("forwarded %d, %v; want 2", moved, err)
	}
	wantState(t, ains, "emails", "scheduled", asynq.TaskStatePending)
	wantState(t, ains, "emails", "scheduled-grouped", asynq.TaskStatePending)

	// A paused queue gives nothing.
	if err := ains.PauseQueue("emails"); err != nil {
		t.Fatal(err)
	}
	if got := fetch(t, r, "emails", 10, time.Now().Add(rdb.LeaseDuration)); !got.Paused || len(got.Jobs) != 0 {
		t.Fatalf("a paused queue gave %+v", got)
	}
	if err := ains.UnpauseQueue("emails"); err != nil {
		t.Fatal(err)
	}

	// Stats agree with asynq's.
	st, err := ins.Stats(ctx, "emails")
	qi, qerr := ains.GetQueueInfo("emails")
	if err != nil || qerr != nil || st.Pending != qi.Pending || st.Aggregating != qi.Aggregating || st.Failed != qi.Archived ||
		st.Completed != qi.Completed || st.ProcessedToday != qi.Processed || st.Pending != 3 || st.Aggregating != 1 {
		t.Fatalf("stats %+v, %v; asynq's %+v, %v", st, err, qi, qerr)
	}

	// Retry (as a new job), forget and flush the failed list.
	failedJob, err := ins.FindFailed(ctx, "archived")
	if err != nil {
		t.Fatal(err)
	}
	again := newTask("again")
	again.Payload = failedJob.Payload
	if err := ins.Retry(ctx, failedJob, again); err != nil {
		t.Fatal(err)
	}
	if info := wantState(t, ains, "emails", "again", asynq.TaskStatePending); string(info.Payload) != `{"id":"archived"}` {
		t.Fatalf("the retried job: %+v", info)
	}
	if _, err := ins.FindFailed(ctx, "archived"); !errors.Is(err, rdb.ErrNotFound) {
		t.Fatalf("the retried job is still in the failed list: %v", err)
	}
	for _, id := range []string{"forgotten", "flushed"} {
		enqueue(id)
		if err := ains.ArchiveTask("emails", id); err != nil {
			t.Fatal(err)
		}
	}
	if err := ins.Forget(ctx, "emails", "forgotten"); err != nil {
		t.Fatal(err)
	}
	if n, err := ins.Flush(ctx, "emails"); err != nil || n != 1 {
		t.Fatalf("flushed %d, %v; want 1", n, err)
	}
	if failed, _ := ins.Failed(ctx, "emails"); len(failed) != 0 {
		t.Fatalf("failed list after flush: %+v", failed)
	}
}

// The one mapping: attempts count the failures that counted plus the
// attempt running or finished, never more than the type allows.
func TestInspectorCountsAttempts(t *testing.T) {
	ctx := context.Background()
	rs, r, _ := newRedis(t)
	ins := rdb.NewInspector(rs.Client(), func(string) int { return 2 })
	if err := r.Enqueue(ctx, newTask("j")); err != nil {
		t.Fatal(err)
	}
	attempt := func(wantState string, wantAttempts int) {
		t.Helper()
		j, err := ins.Job(ctx, "j", "emails")
		if err != nil || j.State != wantState || j.Attempts != wantAttempts || j.MaxAttempts != 2 {
			t.Fatalf("job: %+v, %v; want %s after %d attempts", j, err, wantState, wantAttempts)
		}
	}
	attempt(rdb.StatePending, 0)
	for i, counts := range []bool{true, false, true, true} {
		got := fetch(t, r, "emails", 1, time.Now().Add(rdb.LeaseDuration))
		want := min(got.Jobs[0].Msg.Retried+1, 2)
		attempt(rdb.StateRunning, want)
		if err := r.Retry(ctx, got.Jobs[0], "boom", counts, time.Time{}); err != nil {
			t.Fatal(err)
		}
		if got.Jobs[0].Msg.Retried != map[int]int{0: 0, 1: 1, 2: 1, 3: 2}[i] {
			t.Fatalf("attempt %d: the message counts %d failures", i+1, got.Jobs[0].Msg.Retried)
		}
	}
	// Three failures counted: shown as the two the type allows.
	attempt(rdb.StatePending, 2)
}

// On Redis Cluster (a real one, of one node) every script runs: each is
// routed by its keys and refused nothing, and work on several queues goes in
// one pipeline.
func TestScriptsRunOnRedisCluster(t *testing.T) {
	ctx := context.Background()
	rs := redistest.Start(t, redistest.Cluster())
	c := rs.ClusterClient()
	c.AddHook(redistest.SlotCheck(t))
	r := rdb.New(c).AsWorker("host/1/100/boot.ns")
	a, b := newTask("a"), newTask("b")
	b.Queue = "crm"
	d := newTask("d")
	d.DueAt = time.Now().Add(time.Minute)
	for _, err := range r.EnqueueMany(ctx, []rdb.Task{a, b, d}) {
		if err != nil {
			t.Fatal(err)
		}
	}
	taken, err := r.Fetch(ctx, []rdb.Take{{Queue: "emails", N: 5}, {Queue: "crm", N: 5}, {Queue: "other", N: 0}}, time.Now().Add(rdb.LeaseDuration))
	if err != nil || len(taken[0].Jobs) != 1 || len(taken[1].Jobs) != 1 || taken[2].Left != 0 {
		t.Fatalf("fetch on two queues: %+v, %v", taken, err)
	}
	if err := r.ExtendLeases(ctx, map[string][]string{"emails": {"a"}, "crm": {"b"}}, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n, err := r.Recover(ctx, []string{"emails", "crm"}, time.Now(), func(string) bool { return false }, 100); err != nil || len(n) != 0 {
		t.Fatalf("recovered living jobs: %v, %v", n, err)
	}
	if err := r.Retry(ctx, taken[0].Jobs[0], "boom", true, time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := r.Requeue(ctx, taken[1].Jobs[0]); err != nil {
		t.Fatal(err)
	}
	moved, _, err := r.ForwardDue(ctx, []string{"emails", "crm"}, time.Now().Add(2*time.Minute), 100)
	if err != nil || moved != 2 {
		t.Fatalf("forwarded %d, %v; want 2", moved, err)
	}
	taken, err = r.Fetch(ctx, []rdb.Take{{Queue: "emails", N: 5}, {Queue: "crm", N: 5}}, time.Now().Add(rdb.LeaseDuration))
	if err != nil || len(taken[0].Jobs) != 2 || len(taken[1].Jobs) != 1 {
		t.Fatalf("fetch again: %+v, %v", taken, err)
	}
	// The worker dies; one that knows it puts its jobs back, then takes them.
	if n, err := r.Recover(ctx, []string{"emails", "crm"}, time.Now(), func(w string) bool { return w == "host/1/100/boot.ns" }, 100); err != nil || n["emails"] != 2 || n["crm"] != 1 {
		t.Fatalf("recovered a dead worker's jobs: %v, %v", n, err)
	}
	taken, err = r.Fetch(ctx, []rdb.Take{{Queue: "emails", N: 5}, {Queue: "crm", N: 5}}, time.Now().Add(rdb.LeaseDuration))
	if err != nil || len(taken[0].Jobs) != 2 || len(taken[1].Jobs) != 1 {
		t.Fatalf("fetch after recovery: %+v, %v", taken, err)
	}
	if err := r.Archive(ctx, taken[0].Jobs[0], "gave up"); err != nil {
		t.Fatal(err)
	}
	if err := r.Complete(ctx, []*rdb.Fetched{taken[0].Jobs[1], taken[1].Jobs[0]}); err != nil {
		t.Fatal(err)
	}
	ins := rdb.NewInspector(c, nil)
	for id, want := range map[string]string{"a": rdb.StateFailed, "d": rdb.StateCompleted, "b": rdb.StateCompleted} {
		if id == "a" && taken[0].Jobs[0].ID != "a" {
			want = rdb.StateCompleted
		}
		if id == "d" && taken[0].Jobs[0].ID == "d" {
			want = rdb.StateFailed
		}
		j, err := ins.Job(ctx, id)
		if err != nil || j.State != want {
			t.Errorf("job %s on the cluster: %+v, %v; want %s", id, j, err, want)
		}
	}
}

// A Redis that lost its scripts (restarted, failed over) answers NOSCRIPT to
// the pipelined scripts: they are sent again with their source, and run once.
func TestPipelinedScriptsSurviveAScriptFlush(t *testing.T) {
	ctx := context.Background()
	rs, r, _ := newRedis(t)
	a, b := newTask("a"), newTask("b")
	b.Queue = "crm"
	for _, err := range r.EnqueueMany(ctx, []rdb.Task{a, b}) {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := rs.Client().ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	taken, err := r.Fetch(ctx, []rdb.Take{{Queue: "emails", N: 5}, {Queue: "crm", N: 5}}, time.Now().Add(rdb.LeaseDuration))
	if err != nil || len(taken[0].Jobs) != 1 || len(taken[1].Jobs) != 1 {
		t.Fatalf("fetch after SCRIPT FLUSH: %+v, %v", taken, err)
	}
	if err := rs.Client().ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := r.Complete(ctx, append(taken[0].Jobs, taken[1].Jobs...)); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"emails", "crm"} {
		if n, _ := rs.Client().Get(ctx, rdb.ProcessedTotalKey(q)).Int(); n != 1 {
			t.Errorf("%s counts %d processed jobs, want 1", q, n)
		}
	}
}

// errand's recoverer puts back at once, counting the attempt, the job of a
// worker whose lease ended, and leaves the job of a living worker (whose lease
// it keeps extending) alone; asynq's Inspector reads both states.
func TestRecoverExpiredPutsBackOnlyLostJobs(t *testing.T) {
	ctx := context.Background()
	rs, r, ins := newRedis(t)
	rs.Client().AddHook(redistest.SlotCheck(t))
	for _, id := range []string{"lost", "living"} {
		if err := r.Enqueue(ctx, newTask(id)); err != nil {
			t.Fatal(err)
		}
	}
	if got := fetch(t, r, "emails", 2, time.Now().Add(rdb.LeaseDuration)); len(got.Jobs) != 2 {
		t.Fatalf("fetched %d jobs", len(got.Jobs))
	}
	if err := r.ExtendLeases(ctx, map[string][]string{"emails": {"lost"}}, time.Now().Add(-2*time.Second)); err != nil {
		t.Fatal(err)
	}
	n, err := r.Recover(ctx, []string{"emails"}, time.Now(), nil, 100)
	if err != nil || n["emails"] != 1 {
		t.Fatalf("recovered %v, %v", n, err)
	}
	info := taskInfo(t, ins, "emails", "lost")
	if info.State != asynq.TaskStatePending || info.Retried != 1 || !strings.Contains(info.LastErr, "lease expired") {
		t.Fatalf("recovered job: %+v", info)
	}
	if info := taskInfo(t, ins, "emails", "living"); info.State != asynq.TaskStateActive {
		t.Fatalf("the living worker's job: %+v", info)
	}
	if n, err := r.Recover(ctx, []string{"emails"}, time.Now(), nil, 100); err != nil || len(n) != 0 {
		t.Fatalf("second pass recovered %v, %v", n, err)
	}
	got := fetch(t, r, "emails", 1, time.Now().Add(rdb.LeaseDuration))
	if len(got.Jobs) != 1 || got.Jobs[0].ID != "lost" || got.Jobs[0].Msg.Retried != 1 {
		t.Fatalf("fetched after recovery: %+v", got.Jobs)
	}
}
