package main

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// /metrics reports per-type and per-queue counts from the whole fleet, the
// handler-duration histogram and the queue sizes; `errand queues` prints a
// readable table.
func TestMetricsAndQueuesTable(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{toml: welcomeAtOnce})
	if status, body := s.post("/api/users", registration("ada@shop.test"), nil); status != http.StatusCreated {
		t.Fatalf("register: %d %v", status, body)
	}
	s.smtp.WaitFor(t, 1, 15*time.Second)
	want := []string{
		`errand_jobs_processed_total{queue="emails",type="user:welcome_email"} 1`,
		`errand_job_duration_seconds_count{type="user:welcome_email"} 1`,
		`errand_queue_size{queue="emails",state="pending"} 0`,
		`errand_outbox_backlog 0`,
		`errand_metrics_redis_up 1`,
	}
	s.waitFor(10*time.Second, "the counts on /metrics", func() bool {
		_, body := s.get("/metrics")
		for _, w := range want {
			if !strings.Contains(body, w) {
				return false
			}
		}
		return true
	})
	out, err := s.cli("queues")
	if err != nil {
		t.Fatalf("errand queues: %v %s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if !strings.Contains(lines[0], "QUEUE") || !strings.Contains(lines[0], "LATENCY") || len(lines) < 7 {
		t.Fatalf("errand queues:\n%s", out)
	}
	found := false
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) > 0 && f[0] == "emails" {
			found = true
			if f[7] != "1" { // SUCCEEDED TODAY
				t.Fatalf("emails row %q: want 1 done today", l)
			}
		}
	}
	if !found {
		t.Fatalf("no emails row:\n%s", out)
	}
}

// With Redis down a registration still succeeds — its jobs wait in the
// database — /readyz says 503, and the welcome email goes out once Redis is
// back.
func TestRegistrationSurvivesRedisOutage(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{toml: `
[jobs."user:welcome_email"]
delay = "1s"
`})
	if status, _ := s.get("/readyz"); status != http.StatusOK {
		t.Fatalf("/readyz with everything up: %d", status)
	}
	s.redis.Stop()
	start := time.Now()
	status, body := s.post("/api/users", registration("ada@shop.test"), nil)
	took := time.Since(start)
	if status != http.StatusCreated {
		t.Fatalf("register with Redis down: %d %v", status, body)
	}
	t.Logf("registration with Redis down answered %d in %s", status, took.Round(time.Millisecond))
	if code, body := s.get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "redis") {
		t.Fatalf("/readyz with Redis down: %d %s", code, body)
	}
	if _, body := s.get("/metrics"); !strings.Contains(body, "errand_outbox_backlog 3") {
		t.Fatalf("outbox backlog not reported:\n%s", body)
	}
	time.Sleep(2 * time.Second)
	s.redis.Restart()
	s.smtp.WaitFor(t, 1, 30*time.Second)
	if code, _ := s.get("/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz after Redis came back: %d", code)
	}
}
