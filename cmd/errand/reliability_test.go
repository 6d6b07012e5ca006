package main

import (
	"fmt"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/redistest"
)

// A worker killed with SIGKILL in the middle of a job: the job is not lost.
// Another worker puts it back and completes it: on this host at once (the
// killed process is gone), elsewhere once its lease ends (rdb's tests).
func TestWorkerSIGKILLMidJobRecovers(t *testing.T) {
	s, w, _ := slowJobInFlight(t, 5*time.Second, "") // the email is mid-send when the worker dies
	// Another worker is alive: on its next recovery pass (about 3 s) it
	// puts back the lost worker's job.
	startBinary(t, errandBinary(t), "worker", "--config", s.config)
	time.Sleep(500 * time.Millisecond)
	if err := w.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = w.Process.Wait()
	killed := time.Now()
	s.smtp.SetLatency(0)
	s.waitFor(60*time.Second, "the killed job to complete", func() bool { return len(s.smtp.Messages()) >= 1 })
	took := time.Since(killed)
	time.Sleep(time.Second)
	t.Logf("SIGKILL mid-job, another worker alive: redelivered and completed %s after the kill; %d delivery(ies); failed list %d",
		took.Round(100*time.Millisecond), len(s.smtp.Messages()), len(s.failed()))
	if took > 15*time.Second {
		t.Fatalf("redelivered %s after the kill, want within 15 s", took.Round(time.Second))
	}
	if n := len(s.smtp.Messages()); n != 1 {
		t.Fatalf("%d deliveries, want exactly 1", n)
	}
}

// Redis restarted (appendonly yes) while delayed jobs wait: every one runs.
func TestRedisRestartKeepsDelayedJobs(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{redis: []redistest.Option{redistest.AppendOnly()}, toml: `
[jobs."user:welcome_email"]
delay = "4s"
`})
	const n = 20
	for i := range n {
		payload := fmt.Sprintf(`{"user_id":%d,"email":"u%d@shop.test","first_name":"U"}`, i, i)
		s.enqueue("user:welcome_email", payload)
	}
	s.redis.Stop()
	time.Sleep(time.Second)
	s.redis.Restart()
	s.smtp.WaitFor(t, n, 60*time.Second)
	time.Sleep(time.Second)
	t.Logf("Redis restarted with %d delayed jobs pending: %d delivered", n, len(s.smtp.Messages()))
	if got := len(s.smtp.Messages()); got != n {
		t.Fatalf("%d of %d delivered", got, n)
	}
}

// Redis stopped during a burst of registrations: every one is answered 201,
// and every welcome email goes out once Redis is back.
func TestRegistrationBurstWhileRedisDown(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{redis: []redistest.Option{redistest.AppendOnly()}, toml: `
[jobs."user:welcome_email"]
delay = "1s"
`})
	const n = 20
	s.redis.Stop()
	var wg sync.WaitGroup
	codes := make(chan int, n)
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, _ := s.post("/api/users", registration(fmt.Sprintf("burst%d@shop.test", i)), nil)
			codes <- code
		}()
	}
	wg.Wait()
	close(codes)
	took := time.Since(start)
	for c := range codes {
		if c != http.StatusCreated {
			t.Fatalf("a registration with Redis down got %d", c)
		}
	}
	time.Sleep(time.Second)
	s.redis.Restart()
	s.smtp.WaitFor(t, n, 60*time.Second)
	time.Sleep(time.Second)
	seen := map[string]bool{}
	for _, m := range s.smtp.Messages() {
		seen[m.To[0]] = true
	}
	s.waitFor(30*time.Second, "every rep message and CRM contact", func() bool {
		return len(s.sandbox.Slack.Messages()) >= n && len(s.sandbox.Tidio.Contacts()) >= n
	})
	time.Sleep(time.Second)
	t.Logf("%d registrations with Redis down: all 201 in %s; after Redis came back: %d welcome emails (%d distinct), %d rep messages, %d CRM contacts",
		n, took.Round(time.Millisecond), len(s.smtp.Messages()), len(seen), len(s.sandbox.Slack.Messages()), len(s.sandbox.Tidio.Contacts()))
	if len(seen) != n || len(s.smtp.Messages()) != n || len(s.sandbox.Slack.Messages()) != n || len(s.sandbox.Tidio.Contacts()) != n {
		t.Fatalf("side effects lost or doubled: %d emails to %d recipients, %d rep messages, %d contacts; want %d each",
			len(s.smtp.Messages()), len(seen), len(s.sandbox.Slack.Messages()), len(s.sandbox.Tidio.Contacts()), n)
	}
}

// A job that kills its worker every time does not loop for ever: each lost
// worker counts an attempt, and once they are used the job fails for good
// with one escalation, without running again.
func TestJobThatKeepsKillingWorkersFailsOnce(t *testing.T) {
	t.Parallel()
	s, w, _ := slowJobInFlight(t, time.Minute, "max_attempts = 2\n")
	for kill := 1; kill <= 2; kill++ {
		s.waitFor(40*time.Second, fmt.Sprintf("attempt %d to start", kill), func() bool { return s.smtp.Attempts() >= kill })
		if err := w.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_, _ = w.Process.Wait()
		if kill == 2 {
			s.smtp.SetLatency(0) // the escalation email goes out at once
		}
		w, _ = startBinary(t, errandBinary(t), "worker", "--config", s.config)
	}
	s.waitFor(40*time.Second, "the escalation email", func() bool { return len(s.escalations()) >= 1 })
	time.Sleep(4 * time.Second)
	if n := len(s.escalations()); n != 1 {
		t.Fatalf("%d escalations, want 1", n)
	}
	if n := len(s.smtp.Messages()); n != 1 {
		t.Fatalf("%d emails sent, want only the escalation", n)
	}
	f := s.failed()
	if len(f) != 1 || f[0]["type"] != "user:welcome_email" {
		t.Fatalf("failed list: %v", f)
	}
	t.Logf("a job that killed its worker twice: failed for good, %v, one escalation", f[0]["error"])
}
