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
	"github.com/errandhq/errand/internal/tidio/tidiotest"

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

// A malformed rate or an unknown service in [limits] stops errand at start,
// before it touches Redis, with one line naming the key.
func TestLimitsConfigErrorsStopErrand(t *testing.T) {
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
// every notification is delivered.
func TestSlackHoldSharedByWorkers(t *testing.T) {
	s := startStack(t, stackOptions{})
	s.startWorker(&syncBuffer{})
	s.sandbox.AddFault(sandbox.Fault{Service: slacktest.Service, Status: http.StatusTooManyRequests, RetryAfter: 3, Count: 1})
	ids := []string{"n" + s.enqueue("user:notify_staff", newCustomer)}
	var throttled sandbox.Call
	s.waitFor(15*time.Second, "Slack's 429", func() bool {
		for _, c := range s.sandbox.Calls(slacktest.Service) {
			if c.Status == http.StatusTooManyRequests {
				throttled = c
				return true
			}
		}
		return false
	})
	for i := range 6 {
		ids = append(ids, "n"+s.enqueue("user:notify_staff", newCustomer))
		ids = append(ids, s.enqueue("user:sync_crm", fmt.Sprintf(`{"user_id":%d,"email":"u%d@shop.test","changed":{"email":"u%d@shop.test","first_name":"Ada","last_name":"Lovelace"}}`, 100+i, i, i)))
	}
	s.waitFor(30*time.Second, "7 Slack messages and 6 Tidio contacts", func() bool {
		return len(s.sandbox.Slack.Messages()) == 7 && len(s.sandbox.Tidio.Contacts()) >= 6
	})
	for _, id := range ids {
		if id[0] == 'n' {
			s.waitDone(id[1:])
		}
	}
	// The hold starts when the 429 is read, just after the sandbox logs it.
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
	if n := len(s.sandbox.Slack.Messages()); n != 7 {
		t.Fatalf("%d Slack messages, want 7", n)
	}
	t.Logf("%d Tidio calls during Slack's 3s hold", tidioDuring)
}
