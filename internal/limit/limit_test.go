package limit_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/limit"
	"github.com/errandhq/errand/internal/redistest"
)

// Two gates (two workers) on one real Redis share the bucket and the hold:
// a 429 seen by one refuses the service on the other, as a throttled error
// (no attempt used), while another service's calls go on.
func TestGateSharedBetweenWorkers(t *testing.T) {
	ctx := context.Background()
	rs := redistest.Start(t)
	limits := map[string]config.Limit{"slack": {Rate: "2/1s", Burst: 1}, "telegram": {Rate: "1/10s"}}
	a, err := limit.New(rs.Client(), limits)
	if err != nil {
		t.Fatal(err)
	}
	b, err := limit.New(rs.Client(), limits)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	t.Cleanup(b.Close)

	throttledWait := func(err error) time.Duration {
		t.Helper()
		var ce *errand.ClassError
		if !errors.As(err, &ce) || ce.Class != errand.Throttled || !errors.Is(err, limit.ErrRefused) {
			t.Fatalf("want a throttled refusal, got %v", err)
		}
		return ce.Wait
	}

	// Burst 1: the first call goes, the second (on the other worker) waits
	// about half a second.
	if err := a.Wait(ctx, "slack"); err != nil {
		t.Fatal(err)
	}
	if w := throttledWait(b.Wait(ctx, "slack")); w <= 0 || w > 500*time.Millisecond {
		t.Fatalf("second call waits %v", w)
	}
	// A service without a limit makes no refusal.
	for range 20 {
		if err := b.Wait(ctx, "tidio"); err != nil {
			t.Fatal(err)
		}
	}

	// Worker a is told 429 with Retry-After 3s: worker b's gate refuses
	// slack for about 3s; tidio still goes.
	call := errand.ThrottledError(fmt.Errorf("slack: 429"), 3*time.Second)
	if got := a.After(ctx, "slack", call); got != call {
		t.Fatalf("After changed the error: %v", got)
	}
	if w := throttledWait(b.Wait(ctx, "slack")); w <= 2*time.Second || w > 3*time.Second {
		t.Fatalf("held slack waits %v, want about 3s", w)
	}
	if err := b.Wait(ctx, "tidio"); err != nil {
		t.Fatalf("tidio is not held by slack's 429: %v", err)
	}
	if until, err := b.HeldUntil(ctx, "slack"); err != nil || time.Until(until) < 2*time.Second {
		t.Fatalf("held until %v (err %v)", until, err)
	}
	if until, err := b.HeldUntil(ctx, "tidio"); err != nil || !until.IsZero() {
		t.Fatalf("tidio held until %v (err %v)", until, err)
	}
	// The gate's own refusal passed to After is not the service throttling
	// us: it holds nothing (else an empty bucket would hold the service).
	if err := a.Wait(ctx, "telegram"); err != nil {
		t.Fatal(err)
	}
	refusal := b.Wait(ctx, "telegram")
	if w := throttledWait(refusal); w < 5*time.Second {
		t.Fatalf("telegram at 1/10s waits %v", w)
	}
	b.After(ctx, "telegram", refusal)
	if until, _ := a.HeldUntil(ctx, "telegram"); !until.IsZero() {
		t.Fatalf("a refusal held telegram until %v", until)
	}
	// A service without a rate is let through by what the worker knows,
	// without asking Redis each time; a hold recorded by another worker is
	// heard at once (and read from Redis within a second at the latest).
	for range 5 {
		if err := b.Wait(ctx, "fulfillment"); err != nil {
			t.Fatal(err)
		}
	}
	a.After(ctx, "fulfillment", errand.ThrottledError(errors.New("fulfillment: 429"), 5*time.Second))
	deadline := time.Now().Add(time.Second)
	for b.Wait(ctx, "fulfillment") == nil {
		if time.Now().After(deadline) {
			t.Fatalf("a worker still calls a service another worker's 429 held a second ago")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if w := throttledWait(b.Wait(ctx, "fulfillment")); w <= 3*time.Second || w > 5*time.Second {
		t.Fatalf("held fulfillment waits %v, want about 5s", w)
	}
	// A non-throttled failure holds nothing.
	b.After(ctx, "tidio", errors.New("500"))
	if until, _ := a.HeldUntil(ctx, "tidio"); !until.IsZero() {
		t.Fatalf("a 500 held tidio until %v", until)
	}
}
