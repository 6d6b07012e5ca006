package lifetime

import (
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// The flags' values: what is accepted, and one line naming the flag and the
// value for what is not.
func TestParse(t *testing.T) {
	l, err := Parse("25", "90m", true)
	if err != nil || l != (Limits{MaxJobs: 25, MaxTime: 90 * time.Minute, StopWhenEmpty: true}) || !l.Any() {
		t.Fatalf("Parse: %+v, %v", l, err)
	}
	if l, err := Parse("", "", false); err != nil || l.Any() {
		t.Fatalf("no flags: %+v, %v", l, err)
	}
	for _, bad := range [][2]string{{"0", ""}, {"-1", ""}, {"1e3", ""}, {"many", ""}, {"", "0"}, {"", "0s"}, {"", "-1h"}, {"", "60"}, {"", "an hour"}} {
		_, err := Parse(bad[0], bad[1], false)
		flag, value := "--max-jobs", bad[0]
		if bad[0] == "" {
			flag, value = "--max-time", bad[1]
		}
		if err == nil || strings.Contains(err.Error(), "\n") || !strings.HasPrefix(err.Error(), flag+` "`+value+`"`) {
			t.Errorf("Parse(%q, %q): %v", bad[0], bad[1], err)
		}
	}
}

// However many fetch loops ask at once, and whatever they get back, no more
// than MaxJobs jobs are taken, and the budget is spent exactly when they are.
func TestBudgetNeverLetsMoreThanMaxJobsBeTaken(t *testing.T) {
	const maxJobs = 100
	lt := New(Limits{MaxJobs: maxJobs}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	var mu sync.Mutex
	taken := 0
	var wg sync.WaitGroup
	for loop := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				n := lt.Take(16)
				if n == 0 {
					select {
					case <-lt.spent:
						return
					default:
						continue // another loop holds the rest, for now
					}
				}
				got := n
				if (i+loop)%3 == 0 {
					got = n / 2 // the queue had fewer: the rest goes back
				}
				mu.Lock()
				taken += got
				mu.Unlock()
				lt.Taken(n, got)
			}
		})
	}
	wg.Wait()
	if taken != maxJobs || lt.started.Load() != maxJobs {
		t.Fatalf("%d jobs taken (counted %d), want %d", taken, lt.started.Load(), maxJobs)
	}
	if n := lt.Take(1); n != 0 {
		t.Fatalf("Take after the budget is spent: %d", n)
	}
}

// With no --max-jobs the budget takes whatever is asked, and only counts.
func TestNoMaxJobsTakesAll(t *testing.T) {
	lt := New(Limits{StopWhenEmpty: true}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if n := lt.Take(64); n != 64 {
		t.Fatalf("Take(64) = %d", n)
	}
	lt.Taken(64, 10)
	if lt.started.Load() != 10 {
		t.Fatalf("started %d", lt.started.Load())
	}
}
