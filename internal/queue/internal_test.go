package queue

import (
	"testing"
	"time"
)

func TestIDTimeRoundTrip(t *testing.T) {
	for _, at := range []time.Time{time.UnixMilli(0), time.Now(), time.UnixMilli(1<<47 + 12345)} {
		id := NewID(at)
		got, ok := idTime(id)
		if !ok || !got.Equal(at.Truncate(time.Millisecond)) {
			t.Fatalf("%s: got %v %v, want %v", id, got, ok, at.Truncate(time.Millisecond))
		}
	}
	for _, bad := range []string{"", "abc", "ZZZZZZZZZZZZZZZZZZZZZZZZZZ", "0000000000000000000000000U", "callback-x"} {
		if _, ok := idTime(bad); ok {
			t.Fatalf("%q read as an ID", bad)
		}
	}
}
