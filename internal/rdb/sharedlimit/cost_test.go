package sharedlimit_test

import (
	"context"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/rdb/sharedlimit"
	"github.com/errandhq/errand/internal/redistest"
)

// Shopify's cost bucket on a Redis Cluster (every key declared, one slot):
// before anything is known one call goes to learn the bucket and the others
// wait; after its answer, calls go while the bucket covers their kind's last
// requested cost, setting it aside, and wait when it does not — less long
// while a call in flight will give most of its cost back; an answer sets the
// reckoning to what Shopify says less the calls still in flight.
func TestCostBucket(t *testing.T) {
	ctx := context.Background()
	rs := redistest.Start(t, redistest.Cluster())
	c := rs.ClusterClient()
	c.AddHook(redistest.SlotCheck(t))
	r := sharedlimit.New(c)

	take := func(op string) (time.Duration, int64) {
		t.Helper()
		wait, res, err := r.CostTake(ctx, "shopify", op)
		if err != nil {
			t.Fatal(err)
		}
		return wait, res
	}
	// Nothing known: the first call goes (reservation 0), the second waits
	// for its answer.
	if wait, res := take("Order"); wait != 0 || res != 0 {
		t.Fatalf("probe: wait %v reservation %d", wait, res)
	}
	if wait, _ := take("Order"); wait <= 0 || wait > time.Second {
		t.Fatalf("while the probe is out: wait %v", wait)
	}
	// Shopify answers: bucket 1000, 50/s, 990 left after the order query
	// (requested 300, actual 10).
	avail, err := r.CostSpent(ctx, "shopify", "Order", 0, &sharedlimit.CostFigures{Requested: 300, Maximum: 1000, Available: 990, RestoreRate: 50})
	if err != nil || avail != 990 {
		t.Fatalf("after the probe: %v %v", avail, err)
	}
	// 990 covers three order queries of 300, set aside; the fourth waits.
	var held []int64
	for range 3 {
		wait, res := take("Order")
		if wait != 0 || res <= 0 {
			t.Fatalf("wait %v reservation %d", wait, res)
		}
		held = append(held, res)
	}
	// With calls in flight it asks again soon, not after the 5 s the
	// bucket would take to refill the 210 missing.
	if wait, _ := take("Order"); wait <= 0 || wait > 500*time.Millisecond {
		t.Fatalf("fourth order query: wait %v", wait)
	}
	// A mutation, never seen, is guessed at the dearest call seen (300).
	if wait, _ := take("Mutation"); wait <= 0 {
		t.Fatalf("an unknown kind went on %v points", 990-900)
	}
	// The first answer: Shopify kept 10 of its 300 and says 960 are left
	// (it has seen only this one). The two others are still in flight:
	// errand reckons 960 − 600.
	avail, err = r.CostSpent(ctx, "shopify", "Order", held[0], &sharedlimit.CostFigures{Requested: 300, Maximum: 1000, Available: 960, RestoreRate: 50})
	if err != nil || avail < 360 || avail > 361 {
		t.Fatalf("after one answer: %v %v", avail, err)
	}
	// A call without an answer gives its reservation back but not its cost.
	if _, err := r.CostSpent(ctx, "shopify", "Order", held[1], nil); err != nil {
		t.Fatal(err)
	}
	// A throttled answer: Shopify's word, 100, stands.
	avail, err = r.CostSpent(ctx, "shopify", "Order", held[2], &sharedlimit.CostFigures{Requested: 300, Maximum: 1000, Available: 100, RestoreRate: 50})
	if err != nil || avail < 100 || avail > 101 {
		t.Fatalf("after a throttled answer: %v %v", avail, err)
	}
	if wait, _ := take("Order"); wait < 3*time.Second || wait > 4*time.Second {
		t.Fatalf("200 short at 50/s with nothing in flight: wait %v", wait)
	}
}
