package rdb_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/rdb"
	"github.com/hibiken/asynq"
)

// A worker known dead has its jobs put back at once, long before their
// leases end, counting the attempt and keeping the id; a living worker's job
// is left running however the dead one's are looked for.
func TestRecoverPutsBackADeadWorkersJobsAtOnce(t *testing.T) {
	ctx := context.Background()
	rs, _, ins := newRedis(t)
	base := rdb.New(rs.Client())
	dead, alive := base.AsWorker("h/1/10/p"), base.AsWorker("h/2/20/p")
	for _, id := range []string{"of-dead", "of-alive"} {
		if err := base.Enqueue(ctx, newTask(id)); err != nil {
			t.Fatal(err)
		}
	}
	if got := fetch(t, dead, "emails", 1, time.Now().Add(rdb.LeaseDuration)); len(got.Jobs) != 1 || got.Jobs[0].ID != "of-dead" {
		t.Fatalf("first worker fetched %+v", got.Jobs)
	}
	if got := fetch(t, alive, "emails", 1, time.Now().Add(rdb.LeaseDuration)); len(got.Jobs) != 1 {
		t.Fatalf("second worker fetched %+v", got.Jobs)
	}
	// Nothing is known dead: both leases run for seconds yet, nothing moves.
	if n, err := base.Recover(ctx, []string{"emails"}, time.Now(), func(string) bool { return false }, 100); err != nil || len(n) != 0 {
		t.Fatalf("recovered %v, %v with no worker dead", n, err)
	}
	var asked []string
	n, err := base.Recover(ctx, []string{"emails"}, time.Now(), func(w string) bool {
		asked = append(asked, w)
		return w == "h/1/10/p"
	}, 100)
	if err != nil || n["emails"] != 1 {
		t.Fatalf("recovered %v, %v", n, err)
	}
	if len(asked) != 2 {
		t.Fatalf("asked about workers %v, want the two that hold leases", asked)
	}
	info := taskInfo(t, ins, "emails", "of-dead")
	if info.State != asynq.TaskStatePending || info.Retried != 1 || !strings.Contains(info.LastErr, "lease expired") {
		t.Fatalf("the dead worker's job: %+v", info)
	}
	if info := taskInfo(t, ins, "emails", "of-alive"); info.State != asynq.TaskStateActive {
		t.Fatalf("the living worker's job: %+v", info)
	}
	// Once its jobs are back, the dead worker is forgotten.
	if ws, _ := rs.Client().ZRange(ctx, rdb.WorkersKey("emails"), 0, -1).Result(); len(ws) != 1 || ws[0] != "h/2/20/p" {
		t.Fatalf("workers still listed: %v", ws)
	}
	got := fetch(t, alive, "emails", 1, time.Now().Add(rdb.LeaseDuration))
	if len(got.Jobs) != 1 || got.Jobs[0].ID != "of-dead" || got.Jobs[0].Msg.Retried != 1 {
		t.Fatalf("fetched after recovery: %+v", got.Jobs)
	}
}

// A worker whose lease was lost (its renewals failed) and whose job was put
// back and handed to another worker records nothing for that job: not done,
// not failed, not put back, its lease not renewed. The worker that holds it
// now does.
func TestAWorkerThatLostItsJobRecordsNothing(t *testing.T) {
	ctx := context.Background()
	rs, _, ins := newRedis(t)
	base := rdb.New(rs.Client())
	lost, taker := base.AsWorker("h/1/10/p"), base.AsWorker("h/2/20/p")
	if err := base.Enqueue(ctx, newTask("job")); err != nil {
		t.Fatal(err)
	}
	old := fetch(t, lost, "emails", 1, time.Now().Add(-2*time.Second)).Jobs // a lease that has already ended
	if len(old) != 1 {
		t.Fatal("nothing fetched")
	}
	if n, err := base.Recover(ctx, []string{"emails"}, time.Now(), nil, 100); err != nil || n["emails"] != 1 {
		t.Fatalf("recovered %v, %v", n, err)
	}
	now := fetch(t, taker, "emails", 1, time.Now().Add(rdb.LeaseDuration)).Jobs
	if len(now) != 1 {
		t.Fatal("the other worker fetched nothing")
	}
	lease := func() float64 { return rs.Client().ZScore(ctx, rdb.LeaseKey("emails"), "job").Val() }
	before := lease()
	if err := lost.ExtendLeases(ctx, map[string][]string{"emails": {"job"}}, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if lease() != before {
		t.Fatal("the worker that lost the job renewed the other's lease")
	}
	if err := lost.Complete(ctx, old); err != nil {
		t.Fatal(err)
	}
	if err := lost.Retry(ctx, old[0], "boom", true, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := lost.Archive(ctx, old[0], "gave up"); err != nil {
		t.Fatal(err)
	}
	if err := lost.Requeue(ctx, old[0]); err != nil {
		t.Fatal(err)
	}
	info := taskInfo(t, ins, "emails", "job")
	if info.State != asynq.TaskStateActive || info.Retried != 1 {
		t.Fatalf("after the old worker's outcomes the job is %s, retried %d; want active, 1", info.State, info.Retried)
	}
	qi, err := ins.GetQueueInfo("emails")
	if err != nil || qi.Processed != 1 || qi.Failed != 1 || qi.Active != 1 || qi.Pending != 0 {
		t.Fatalf("queue counts the old worker's outcomes: %+v, %v", qi, err)
	}
	if err := taker.Complete(ctx, now); err != nil {
		t.Fatal(err)
	}
	if info := taskInfo(t, ins, "emails", "job"); info.State != asynq.TaskStateCompleted {
		t.Fatalf("the holder's completion: %+v", info)
	}
	if n, _ := rs.Client().HLen(ctx, rdb.OwnersKey("emails")).Result(); n != 0 {
		t.Fatalf("%d owners left after the job completed", n)
	}
}
