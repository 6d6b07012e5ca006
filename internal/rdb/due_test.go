package rdb_test

import (
	"context"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/rdb"
)

// Due counts what a worker could run now: pending jobs (not on a paused
// queue), jobs of a lost worker (lease ended), and scheduled jobs and
// retries whose time has come; not those due later, nor a living worker's.
func TestDueCountsOnlyWhatCouldRunNow(t *testing.T) {
	ctx := context.Background()
	_, r, ins := newRedis(t)
	now := time.Now()
	due := func(at time.Time, want int64, queues ...string) {
		t.Helper()
		if queues == nil {
			queues = []string{"emails"}
		}
		n, err := r.Due(ctx, queues, at)
		if err != nil || n != want {
			t.Fatalf("Due(%v) at now%+v = %d, %v; want %d", queues, at.Sub(now).Round(time.Second), n, err, want)
		}
	}
	due(now, 0)
	for _, id := range []string{"a", "b"} {
		if err := r.Enqueue(ctx, newTask(id)); err != nil {
			t.Fatal(err)
		}
	}
	later := newTask("later")
	later.DueAt = now.Add(time.Hour)
	if err := r.Enqueue(ctx, later); err != nil {
		t.Fatal(err)
	}
	due(now, 2)
	due(now.Add(2*time.Hour), 3) // the scheduled job's time has come

	alive, lost := r.AsWorker("h/1/10/p"), r.AsWorker("h/2/20/p")
	a := fetch(t, alive, "emails", 1, now.Add(rdb.LeaseDuration)).Jobs[0]
	due(now, 1) // a living worker's job is not due
	fetch(t, lost, "emails", 1, now.Add(-time.Second))
	due(now, 1) // a lost worker's is: it is put back soon

	if err := alive.Retry(ctx, a, "smtp down", true, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	due(now, 1)
	due(now.Add(2*time.Hour), 3) // the retry's and the scheduled job's time has come

	// Jobs pending on a paused queue cannot run; another queue's can.
	if err := ins.PauseQueue("emails"); err != nil {
		t.Fatal(err)
	}
	if err := r.Enqueue(ctx, newTask("c")); err != nil {
		t.Fatal(err)
	}
	crm := newTask("d")
	crm.Queue = "crm"
	if err := r.Enqueue(ctx, crm); err != nil {
		t.Fatal(err)
	}
	due(now, 1)
	due(now, 2, "emails", "crm")
}
