package limit_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/limit"
	"github.com/errandhq/errand/internal/redistest"
	"github.com/errandhq/errand/internal/sandbox"
	"github.com/errandhq/errand/internal/shopify"
	"github.com/errandhq/errand/internal/shopify/shopifytest"
)

// A burst of tracking syncs from two workers' gates against a small Shopify
// cost bucket (600 points, 200 a second back, each order query asking 282):
// the gates keep the shared bucket in Redis from each answer's
// extensions.cost and make calls wait before Shopify would refuse them, so
// Shopify answers no THROTTLED and every sync completes. The same burst
// without the gates is throttled.
func TestShopifyCostBucketSharedBetweenWorkers(t *testing.T) {
	cfg := shopify.Config{Shop: "acme.myshopify.com", AccessToken: "shpat_test_token", APIVersion: "2025-07"}
	shop := shopifytest.New(cfg)
	srv := httptest.NewServer(sandbox.Of(shop).Handler())
	t.Cleanup(srv.Close)
	cfg.BaseURL = srv.URL
	client := func(g *limit.Gate) *shopify.Client {
		c, err := shopify.New(cfg, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if g == nil {
			return c
		}
		return c.WithGate(g)
	}
	const burst = 16
	// Each query holds its requested cost for 200 ms, as a real query runs.
	shop.SetBucket(600, 200, 200*time.Millisecond)

	// Without the gates: two plain clients, no waiting.
	sync := func(clients []*shopify.Client, first int64) (refusals int64, err error) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		var errs []error
		for i := range burst {
			c := clients[i%len(clients)]
			id := first + int64(i)
			shop.AddOrder(id, 1)
			wg.Go(func() {
				deadline := time.Now().Add(60 * time.Second)
				for {
					_, _, err := c.SyncTracking(context.Background(), id, shopify.Tracking{Number: "1Z" + time.Now().Format("150405.000")})
					var ce *errand.ClassError
					if errors.Is(err, limit.ErrRefused) && errors.As(err, &ce) && time.Now().Before(deadline) {
						// What the queue does with the gate's refusal: the job
						// runs again after the wait, no attempt used.
						atomic.AddInt64(&refusals, 1)
						time.Sleep(ce.Wait)
						continue
					}
					if err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
					}
					return
				}
			})
		}
		wg.Wait()
		return refusals, errors.Join(errs...)
	}
	if _, err := sync([]*shopify.Client{client(nil), client(nil)}, 1000); err == nil || shop.Throttled() == 0 {
		t.Fatalf("the burst without gates was not throttled (%d THROTTLED; %v): the test's bucket is too big to show anything", shop.Throttled(), err)
	}
	t.Logf("without the gates: %d THROTTLED answers", shop.Throttled())

	shop.SetBucket(600, 200, 200*time.Millisecond)
	before := shop.Throttled()
	rs := redistest.Start(t)
	a, err := limit.New(rs.Client(), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := limit.New(rs.Client(), nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	refusals, err := sync([]*shopify.Client{client(a), client(b)}, 2000)
	if err != nil {
		t.Fatalf("a sync failed: %v", err)
	}
	if n := shop.Throttled() - before; n != 0 {
		t.Fatalf("Shopify answered THROTTLED %d times behind the gates", n)
	}
	for i := range int64(burst) {
		if f := shop.Fulfillments(2000 + i); len(f) != 1 {
			t.Fatalf("order %d has %d fulfillments, want 1", 2000+i, len(f))
		}
	}
	if refusals == 0 {
		t.Fatalf("the gates never made a call wait: the bucket was not in play")
	}
	t.Logf("behind the gates: %d syncs in %s, %d waits, no THROTTLED", burst, time.Since(start).Round(time.Millisecond), refusals)
}
