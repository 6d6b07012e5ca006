package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/sandbox"
	"github.com/errandhq/errand/internal/slack/slacktest"
	"github.com/errandhq/errand/internal/tidio/tidiotest"
)

// [limits.slack] rate = "5/1s", burst 1, two workers: 30 notifications all
// reach Slack, both workers sending, and in no 1 s window of Slack's call log
// are there more than 5×1 + 1 calls.
func TestSlackRateLimitShared(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{toml: "\n[limits.slack]\nrate = \"5/1s\"\n"})
	s.startWorker(&syncBuffer{})
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
	for i, log := range s.workers {
		n := len(log.lines("type=user:notify_staff", "job done"))
		t.Logf("worker %d sent %d", i+1, n)
		if n == 0 {
			t.Errorf("worker %d sent nothing: the limit was not shared by two workers", i+1)
		}
	}
}

// A malformed rate or an unknown service in [limits] stops errand at start,
// before it touches Redis, with one line naming the key.
func TestLimitsConfigErrorsStopErrand(t *testing.T) {
	t.Parallel()
	bin := errandBinary(t)
	dir := t.TempDir()
	for _, c := range []struct {
		toml, env, want string
	}{
		{env: "ERRAND_LIMITS__SLACK__RATE=ten", want: "limits.slack.rate: "},
		{toml: "[limits.slack]\nrate = \"5/0s\"\n", want: "limits.slack.rate: "},
		{toml: "[limits.slack]\nrate = \"0/1s\"\n", want: "limits.slack.rate: "},
		{toml: "[limits.slakc]\nrate = \"5/1s\"\n", want: "limits.slakc: unknown service"},
	} {
		path := filepath.Join(dir, "config.toml")
		if err := os.WriteFile(path, []byte(c.toml), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "worker", "--config", path)
		cmd.Env = append(os.Environ(), c.env)
		out, err := cmd.CombinedOutput()
		if err == nil || cmd.ProcessState.ExitCode() == 0 {
			t.Fatalf("%q %q: errand started (%v)\n%s", c.toml, c.env, err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) != 1 || !strings.Contains(lines[0], c.want) {
			t.Errorf("%q %q: output %q, want one line with %q", c.toml, c.env, out, c.want)
		}
	}
}

// Two workers, and Slack answers one call 429 with Retry-After 3 s: neither
// worker calls Slack for those 3 s, while Tidio's calls go on; afterwards
// every notification and every contact is delivered, no attempt used.
func TestSlackHoldSharedByWorkers(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{})
	s.startWorker(&syncBuffer{})
	s.sandbox.AddFault(sandbox.Fault{Service: slacktest.Service, Status: http.StatusTooManyRequests, RetryAfter: 3, Count: 1})
	notifications := []string{s.enqueue("user:notify_staff", newCustomer)}
	throttled := s.waitCall(slacktest.Service, http.StatusTooManyRequests)
	var contacts []string
	for i := range 6 {
		notifications = append(notifications, s.enqueue("user:notify_staff", newCustomer))
		contacts = append(contacts, s.enqueue("user:sync_crm", contactPayload(100+i)))
	}
	for _, id := range append(notifications, contacts...) {
		if done := s.waitDone(id); !strings.Contains(done, "attempt=1 ") {
			t.Errorf("a held job used an attempt: %s", done)
		}
	}
	if n := len(s.sandbox.Slack.Messages()); n != 7 {
		t.Fatalf("%d Slack messages, want 7", n)
	}
	if n := len(s.sandbox.Tidio.Contacts()); n != 6 {
		t.Fatalf("%d Tidio contacts, want 6", n)
	}
	// The hold starts when the 429 is read, just after the sandbox logs its
	// arrival, and lasts the 3 s Slack asked for.
	holdEnd := throttled.At.Add(3*time.Second - 100*time.Millisecond)
	tidioDuring := 0
	for _, c := range s.sandbox.Calls("") {
		if !c.At.After(throttled.At) || !c.At.Before(holdEnd) {
			continue
		}
		switch c.Service {
		case slacktest.Service:
			t.Errorf("Slack called %s after its 429 asked for 3s", c.At.Sub(throttled.At))
		case tidiotest.Service:
			tidioDuring++
		}
	}
	if tidioDuring == 0 {
		t.Fatalf("no Tidio call during Slack's hold")
	}
	t.Logf("%d Tidio calls during Slack's 3s hold", tidioDuring)
}

// Tidio answers 429 without Retry-After and keeps refusing until its minute
// window turns (its Date says 57 s past the minute: 3 s to go). With two
// workers, the jobs queued after that 429 wait for the window instead of
// calling: the fake answers one 429 in all, not one per job.
func TestTidioThrottleHoldsQueuedJobsForTheWindow(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{wrapFakes: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Date", time.Now().UTC().Truncate(time.Minute).Add(57*time.Second).Format(http.TimeFormat))
			h.ServeHTTP(w, r)
		})
	}})
	s.startWorker(&syncBuffer{})
	s.sandbox.AddFault(sandbox.Fault{Service: tidiotest.Service, Throttle: true, For: 3 * time.Second})
	ids := []string{s.enqueue("user:sync_crm", contactPayload(200))}
	throttled := s.waitCall(tidiotest.Service, http.StatusTooManyRequests)
	for i := 1; i < 6; i++ {
		ids = append(ids, s.enqueue("user:sync_crm", contactPayload(200+i)))
	}
	for _, id := range ids {
		if done := s.waitDone(id); !strings.Contains(done, "attempt=1 ") {
			t.Errorf("a held job used an attempt: %s", done)
		}
	}
	if n := len(s.sandbox.Tidio.Contacts()); n != 6 {
		t.Fatalf("%d Tidio contacts, want 6", n)
	}
	refused := 0
	for _, c := range s.sandbox.Calls(tidiotest.Service) {
		if c.Status == http.StatusTooManyRequests {
			refused++
		}
		if c.At.After(throttled.At) && c.At.Before(throttled.At.Add(3*time.Second-100*time.Millisecond)) {
			t.Errorf("Tidio called %s after its 429, before its window turned", c.At.Sub(throttled.At))
		}
	}
	if refused != 1 {
		t.Fatalf("Tidio answered %d 429s, want 1: the queued jobs called it during its window", refused)
	}
}

// waitCall waits for the first call of service answered with status and
// returns it.
func (s *stack) waitCall(service string, status int) sandbox.Call {
	s.t.Helper()
	var found sandbox.Call
	s.waitFor(15*time.Second, fmt.Sprintf("a %s call answered %d", service, status), func() bool {
		for _, c := range s.sandbox.Calls(service) {
			if c.Status == status {
				found = c
				return true
			}
		}
		return false
	})
	return found
}

// contactPayload is a user:sync_crm payload creating user's contact.
func contactPayload(user int) string {
	return fmt.Sprintf(`{"user_id":%d,"email":"u%d@shop.test","changed":{"email":"u%d@shop.test","first_name":"Ada","last_name":"Lovelace"}}`, user, user, user)
}
