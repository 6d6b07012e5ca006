package rdb_test

import (
	"context"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/rdb"
	"github.com/errandhq/errand/internal/redistest"
)

func orderedTask(id, key string) rdb.Task {
	t := newTask(id)
	t.Queue, t.OrderKey = "crm", key
	return t
}

// The sequence scripts on a real Redis Cluster (one node), every key checked
// to be in the queue's slot: jobs of one key go one at a time in the order
// queued, other keys and unordered jobs are not held, the key moves only
// forward, and a predecessor that will never end does not block its key.
func TestOrderSequencesOnRedisCluster(t *testing.T) {
	ctx := context.Background()
	rs := redistest.Start(t, redistest.Cluster())
	c := rs.ClusterClient()
	c.AddHook(redistest.SlotCheck(t))
	r := rdb.New(c)

	u1, u2, u3, v1, plain := orderedTask("u1", "7"), orderedTask("u2", "7"), orderedTask("u3", "7"), orderedTask("v1", "8"), orderedTask("p", "")
	for i, err := range r.EnqueueMany(ctx, []rdb.Task{u1, u2, u3, v1, plain}) {
		if err != nil {
			t.Fatalf("enqueue %d: %v", i, err)
		}
	}
	// A duplicate takes no place in the line.
	if err := r.Enqueue(ctx, orderedTask("u2", "7")); err != rdb.ErrDuplicate {
		t.Fatalf("duplicate: %v", err)
	}
	gate := func(id, key string) rdb.OrderTurn {
		t.Helper()
		turn, err := r.OrderGate(ctx, "crm", "test:job", key, id)
		if err != nil {
			t.Fatalf("gate %s: %v", id, err)
		}
		return turn
	}
	want := func(id, key string, seq, ahead int64) {
		t.Helper()
		if got := gate(id, key); !got.Ordered || got.Seq != seq || got.Ahead != ahead {
			t.Fatalf("gate %s: %+v, want seq %d ahead %d", id, got, seq, ahead)
		}
	}
	want("u1", "7", 1, 0)
	want("u2", "7", 2, 1)
	want("u3", "7", 3, 2)
	want("v1", "8", 1, 0) // another user is not held by user 7's line
	if got := gate("p", "7"); got.Ordered {
		t.Fatalf("a job queued without a key must run unordered: %+v", got)
	}

	if err := r.OrderDone(ctx, "crm", "test:job", "7", 1); err != nil {
		t.Fatal(err)
	}
	want("u2", "7", 2, 0)
	want("u3", "7", 3, 1)
	// Only forward: a late report of an older end changes nothing.
	if err := r.OrderDone(ctx, "crm", "test:job", "7", 2); err != nil {
		t.Fatal(err)
	}
	if err := r.OrderDone(ctx, "crm", "test:job", "7", 1); err != nil {
		t.Fatal(err)
	}
	want("u3", "7", 3, 0)

	// The hash lives about OrderTTL after its last use.
	key := rdb.OrderKey("crm", "test:job", "7")
	if ttl := c.TTL(ctx, key).Val(); ttl < rdb.OrderTTL-time.Minute || ttl > rdb.OrderTTL {
		t.Fatalf("ttl of %s: %s", key, ttl)
	}

	// A job that ended and runs again (a failed job run again by asynq's
	// own tools, in place) takes a new place at the end of its key's line.
	if err := r.Enqueue(ctx, orderedTask("u4", "7")); err != nil {
		t.Fatal(err)
	}
	want("u2", "7", 5, 2) // behind u3 (3) and u4 (4)
	want("u2", "7", 5, 2) // and keeps that place

	// A predecessor gone from Redis without ending (removed by hand) is
	// skipped: u4 runs once u3 is gone.
	want("u4", "7", 4, 1)
	if err := c.Del(ctx, rdb.TaskKey("crm", "u3")).Err(); err != nil {
		t.Fatal(err)
	}
	want("u4", "7", 4, 0)
	want("u2", "7", 5, 1)

	// So is one that failed for good without moving the key on (its worker
	// lost between the two writes).
	if err := r.EnqueueMany(ctx, []rdb.Task{orderedTask("v2", "8"), orderedTask("v3", "8")})[1]; err != nil {
		t.Fatal(err)
	}
	if err := r.OrderDone(ctx, "crm", "test:job", "8", 1); err != nil {
		t.Fatal(err)
	}
	want("v3", "8", 3, 1)
	if err := c.HSet(ctx, rdb.TaskKey("crm", "v2"), "state", "archived").Err(); err != nil {
		t.Fatal(err)
	}
	want("v3", "8", 3, 0)

	// A delayed job keeps its key's line alive until well after it is due.
	later := orderedTask("w1", "9")
	later.DueAt = time.Now().Add(30 * 24 * time.Hour)
	if err := r.Enqueue(ctx, later); err != nil {
		t.Fatal(err)
	}
	if ttl := c.TTL(ctx, rdb.OrderKey("crm", "test:job", "9")).Val(); ttl < 37*24*time.Hour-time.Minute {
		t.Fatalf("ttl of a delayed job's key: %s", ttl)
	}
}
