package queue

import (
	"slices"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/rdb"
)

// The fetcher asks a queue of unknown length for all it wants and only the
// length of the others; then it asks each queue for what it is known to
// hold, and skips the empty ones until a wake-up names them or the poll
// interval has passed.
func TestFetchPlansFromKnownDepths(t *testing.T) {
	d := newDepths([]string{"a", "b", "c"}, time.Hour)
	order := []string{"a", "b", "c"}
	want := func(takes []rdb.Take, exp ...rdb.Take) {
		t.Helper()
		if !slices.Equal(takes, exp) {
			t.Fatalf("plan %v, want %v", takes, exp)
		}
	}
	takes, seen := d.plan(order, 10)
	want(takes, rdb.Take{Queue: "a", N: 10}, rdb.Take{Queue: "b"}, rdb.Take{Queue: "c"})
	d.learn([]rdb.Taken{{Queue: "a", Left: 0}, {Queue: "b", Left: 3}, {Queue: "c", Left: 50}}, seen)

	takes, seen = d.plan(order, 10)
	want(takes, rdb.Take{Queue: "b", N: 3}, rdb.Take{Queue: "c", N: 7})
	// A wake-up for b while that fetch ran: its "empty" must not stick.
	d.forget("b")
	d.learn([]rdb.Taken{{Queue: "b", Left: 0}, {Queue: "c", Left: 43}}, seen)
	takes, _ = d.plan(order, 10)
	want(takes, rdb.Take{Queue: "b", N: 10}) // c is known to hold jobs: nothing to ask it yet

	// Once the poll interval has passed, every length is asked again.
	d = newDepths([]string{"a", "b"}, time.Millisecond)
	_, seen = d.plan([]string{"a", "b"}, 1)
	d.learn([]rdb.Taken{{Queue: "a", Left: 0}, {Queue: "b", Left: 0}}, seen)
	time.Sleep(5 * time.Millisecond)
	takes, _ = d.plan([]string{"a", "b"}, 1)
	want(takes, rdb.Take{Queue: "a", N: 1}, rdb.Take{Queue: "b"})
}
