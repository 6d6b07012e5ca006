package redistest

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// A killed master is replaced by its replica, and a failover client follows.
func TestSentinelFailsOverAKilledMaster(t *testing.T) {
	d := StartSentinel(t)
	c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: MasterName, SentinelAddrs: d.Addrs(), DisableIdentity: true})
	defer c.Close()
	ctx := context.Background()
	if err := c.Set(ctx, "k", "before", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Wait(ctx, 1, 5*time.Second).Result(); err != nil || n != 1 {
		t.Fatalf("WAIT = %d, %v; want the replica", n, err)
	}
	old := d.MasterAddr()
	if old != d.Master.Addr() {
		t.Fatalf("sentinels name %q, want %s", old, d.Master.Addr())
	}
	d.Master.Kill()
	now := d.WaitFailover(old, 30*time.Second)
	if now != d.Replica.Addr() {
		t.Fatalf("new master %s, want the replica %s", now, d.Replica.Addr())
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		v, err := c.Get(ctx, "k").Result()
		if err == nil && v == "before" {
			if err := c.Set(ctx, "k", "after", 0).Err(); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("failover client did not follow: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A paused replica acknowledges nothing: WAIT times out with 0.
func TestPausedReplicaAcknowledgesNothing(t *testing.T) {
	d := StartSentinel(t)
	c := d.Master.Client()
	ctx := context.Background()
	d.Replica.Pause()
	defer d.Replica.Resume()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Wait(ctx, 1, 300*time.Millisecond).Result(); err != nil || n != 0 {
		t.Fatalf("WAIT = %d, %v; want 0 with the replica paused", n, err)
	}
}
