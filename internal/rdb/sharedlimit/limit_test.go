package sharedlimit_test

import (
	"context"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/rdb/sharedlimit"
	"github.com/errandhq/errand/internal/redistest"
)

// The shared bucket on a real Redis: burst calls go at once, the next waits
// about one token's time, and over a longer run no more than rate×D + burst
// calls are granted. A hold refuses every call, even with tokens left, until
// it ends, and a shorter hold never cuts a longer one short.
func TestLimitBucketAndHold(t *testing.T) {
	ctx := context.Background()
	rs := redistest.Start(t)
	r := sharedlimit.New(rs.Client())

	const per = 100 * time.Millisecond // 10 per second
	for i := range 3 {
		wait, held, err := r.LimitTake(ctx, "slack", per, 3)
		if err != nil || wait != 0 || held {
			t.Fatalf("call %d of a burst of 3: wait %v held %v err %v", i, wait, held, err)
		}
	}
	wait, held, err := r.LimitTake(ctx, "slack", per, 3)
	if err != nil || held || wait <= 0 || wait > per {
		t.Fatalf("4th call: wait %v held %v err %v; want a wait in (0, %v]", wait, held, err, per)
	}
	// Another service has its own bucket.
	if wait, _, err := r.LimitTake(ctx, "tidio", per, 1); err != nil || wait != 0 {
		t.Fatalf("tidio: wait %v err %v", wait, err)
	}

	// Take as fast as possible for 1 s: at most 10×1 + 3 granted (the 3 went
	// above, so the bucket starts empty here: at most 10 + 1 more).
	start, granted := time.Now(), 0
	for time.Since(start) < time.Second {
		wait, _, err := r.LimitTake(ctx, "slack", per, 3)
		if err != nil {
			t.Fatal(err)
		}
		if wait == 0 {
			granted++
		}
	}
	if el := time.Since(start); granted > int(el/per)+1 || granted < 5 {
		t.Fatalf("granted %d calls in %v at 10/s from an empty bucket", granted, el)
	}

	// A hold refuses calls though the bucket refills.
	time.Sleep(400 * time.Millisecond)
	until, err := r.LimitHold(ctx, "slack", 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if short, err := r.LimitHold(ctx, "slack", 10*time.Millisecond); err != nil || !short.Equal(until) {
		t.Fatalf("a shorter hold moved the end: %v (was %v), err %v", short, until, err)
	}
	if got, err := r.LimitHeldUntil(ctx, "slack"); err != nil || !got.Equal(until) {
		t.Fatalf("held until %v, want %v (err %v)", got, until, err)
	}
	wait, held, err = r.LimitTake(ctx, "slack", per, 3)
	if err != nil || !held || wait <= time.Second || wait > 2*time.Second {
		t.Fatalf("held service: wait %v held %v err %v", wait, held, err)
	}
	// The hold also applies to a service with no rate.
	if _, err := r.LimitHold(ctx, "smtp", time.Second); err != nil {
		t.Fatal(err)
	}
	if wait, held, err := r.LimitTake(ctx, "smtp", 0, 1); err != nil || !held || wait <= 0 {
		t.Fatalf("held smtp without a rate: wait %v held %v err %v", wait, held, err)
	}
	if got, err := r.LimitHeldUntil(ctx, "telegram"); err != nil || !got.IsZero() {
		t.Fatalf("never held: %v %v", got, err)
	}
	// After the hold, calls go again.
	time.Sleep(time.Until(until) + 50*time.Millisecond)
	if wait, held, err := r.LimitTake(ctx, "slack", per, 3); err != nil || held || wait != 0 {
		t.Fatalf("after the hold: wait %v held %v err %v", wait, held, err)
	}
}

// A caller ready to wait in place is promised the next token when it comes
// within that time: the bucket goes below zero, so the caller after it waits
// behind it, and no span holds more than rate×D + burst calls.
func TestLimitPromise(t *testing.T) {
	ctx := context.Background()
	rs := redistest.Start(t, redistest.Cluster())
	c := rs.ClusterClient()
	c.AddHook(redistest.SlotCheck(t))
	r := sharedlimit.New(c)
	const per = time.Second
	if wait, _, promised, err := r.LimitPromise(ctx, "tidio", per, 1, 0); err != nil || wait != 0 || promised {
		t.Fatalf("first call: %v %v %v", wait, promised, err)
	}
	// Not ready to wait: refused, nothing promised.
	if wait, _, promised, err := r.LimitPromise(ctx, "tidio", per, 1, 0); err != nil || wait <= 0 || promised {
		t.Fatalf("no waiting: %v %v %v", wait, promised, err)
	}
	// Ready to wait 5 s: the token in about 1 s is promised.
	first, _, promised, err := r.LimitPromise(ctx, "tidio", per, 1, 5*time.Second)
	if err != nil || !promised || first <= 0 || first > per {
		t.Fatalf("promise: %v %v %v", first, promised, err)
	}
	// The next caller waits behind it: about 2 s; ready for only 1.5 s, it
	// is refused and promised nothing.
	wait, _, promised, err := r.LimitPromise(ctx, "tidio", per, 1, 1500*time.Millisecond)
	if err != nil || promised || wait <= per || wait > 2*per {
		t.Fatalf("behind a promise: %v %v %v", wait, promised, err)
	}
	// A held service promises nothing.
	if _, err := r.LimitHold(ctx, "tidio", time.Minute); err != nil {
		t.Fatal(err)
	}
	if wait, held, promised, err := r.LimitPromise(ctx, "tidio", per, 1, time.Hour); err != nil || !held || promised || wait < 59*time.Second {
		t.Fatalf("held: %v %v %v %v", wait, held, promised, err)
	}
}
