package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/slack/slacktest"
)

// [limits.slack] rate = "5/1s", burst 1: 30 notifications all reach Slack,
// and in no 1 s window of Slack's call log are there more than 5×1 + 1 calls.
func TestSlackRateLimitShared(t *testing.T) {
	s := startStack(t, stackOptions{toml: "\n[limits.slack]\nrate = \"5/1s\"\n"})
	ids := make([]string, 30)
	for i := range ids {
		ids[i] = s.enqueue("user:notify_staff", newCustomer)
	}
	s.waitFor(90*time.Second, "30 Slack messages", func() bool { return len(s.sandbox.Slack.Messages()) == 30 })
	for _, id := range ids {
		s.waitDone(id)
	}
	calls := s.sandbox.Calls(slacktest.Service)
	most := 0
	for i, c := range calls {
		if c.Status != http.StatusOK {
			t.Fatalf("call %d: status %d", i, c.Status)
		}
		n := 0
		for _, d := range calls[i:] {
			if d.At.Sub(c.At) < time.Second {
				n++
			}
		}
		most = max(most, n)
	}
	t.Logf("%d Slack calls over %s; at most %d in any 1s window", len(calls), calls[len(calls)-1].At.Sub(calls[0].At), most)
	if most > 6 {
		t.Fatalf("%d Slack calls in one 1s window; the limit allows 5×1 + 1", most)
	}
	if len(calls) != 30 {
		t.Fatalf("%d Slack calls for 30 jobs", len(calls))
	}
}
