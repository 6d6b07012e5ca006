package main

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
