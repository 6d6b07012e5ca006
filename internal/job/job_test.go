package job

import (
	"testing"
	"time"
)

func TestBackoffFor(t *testing.T) {
	d := &Definition{Backoff: []time.Duration{10 * time.Second, time.Minute}}
	for used, want := range map[int]time.Duration{0: 10 * time.Second, 1: 10 * time.Second, 2: time.Minute, 9: time.Minute} {
		if got := d.BackoffFor(used); got != want {
			t.Errorf("BackoffFor(%d) = %s, want %s", used, got, want)
		}
	}
}

func TestNewIDSortsByTime(t *testing.T) {
	a := NewID(time.UnixMilli(1_700_000_000_000))
	b := NewID(time.UnixMilli(1_700_000_000_001))
	if len(a) != 26 || !(a < b) {
		t.Fatalf("ids %q %q", a, b)
	}
	seen := map[string]bool{}
	now := time.Now()
	for range 10000 {
		id := NewID(now)
		if seen[id] {
			t.Fatalf("duplicate id %s", id)
		}
		seen[id] = true
	}
}

func TestIDTimeRoundTrip(t *testing.T) {
	for _, at := range []time.Time{time.UnixMilli(0), time.Now(), time.UnixMilli(1<<47 + 12345)} {
		id := NewID(at)
		got, ok := IDTime(id)
		if !ok || !got.Equal(at.Truncate(time.Millisecond)) {
			t.Fatalf("%s: got %v %v, want %v", id, got, ok, at.Truncate(time.Millisecond))
		}
	}
	for _, bad := range []string{"", "abc", "ZZZZZZZZZZZZZZZZZZZZZZZZZZ", "0000000000000000000000000U", "callback-x"} {
		if _, ok := IDTime(bad); ok {
			t.Fatalf("%q read as an ID", bad)
		}
	}
}
