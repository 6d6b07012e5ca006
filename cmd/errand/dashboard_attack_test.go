package main

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// DNS rebinding: a page on evil.example re-points its name at 127.0.0.1 and
// reads the dashboard, which trusts loopback when no password is set. The
// browser sends Host: evil.example; errand must refuse it and show no queue.
func TestDashboardRefusesDNSRebinding(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{noWorker: true})
	s.enqueue("user:welcome_email", `{"user_id":1,"email":"ada@shop.test","first_name":"Ada"}`)
	port := s.base[strings.LastIndex(s.base, ":")+1:]
	for _, host := range []string{"evil.example", "evil.example:" + port, "localhost.evil.example:" + port, "127.0.0.1.nip.io:" + port} {
		for _, path := range []string{"/monitoring/api/queues", "/monitoring/api/queues/emails/pending_tasks", "/monitoring/"} {
			code, _, body := s.dashboardRequest("GET", path, host, "", "")
			if code != http.StatusForbidden {
				t.Errorf("GET %s with Host %s from loopback: %d, want 403", path, host, code)
			}
			if strings.Contains(body, "emails") || strings.Contains(body, "ada@shop.test") {
				t.Errorf("GET %s with Host %s showed queue data: %.200s", path, host, body)
			}
		}
	}
	// errand's own names still open it.
	for _, host := range []string{"", "localhost:" + port, "[::1]:" + port} {
		code, _, body := s.dashboardRequest("GET", "/monitoring/api/queues", host, "", "")
		if code != http.StatusOK || !strings.Contains(body, `"emails"`) {
			t.Errorf("GET /monitoring/api/queues with Host %q: %d %.200s, want 200 with the queues", host, code, body)
		}
	}
}

// CSRF: the operator, logged in to the dashboard, visits a hostile page whose
// form POSTs to the dashboard's actions; the browser adds the saved basic-auth
// credentials (or, without a password, the dashboard trusts loopback).
// errand must refuse every cross-origin change and change nothing.
func TestDashboardRefusesCrossSiteActions(t *testing.T) {
	t.Parallel()
	for _, mode := range []struct {
		name, password string
	}{{"basic auth", "dash-secret"}, {"loopback, no password", ""}} {
		t.Run(mode.name, func(t *testing.T) {
			s := startStack(t, stackOptions{noWorker: true, dashboardPW: mode.password})
			s.enqueue("ops:noop", "{}")
			user := ""
			if mode.password != "" {
				user = "admin"
			}
			form := []string{"Content-Type", "application/x-www-form-urlencoded"}
			for _, attack := range [][]string{
				{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"},
				{"Origin", "https://evil.example"}, // a browser without Sec-Fetch-Site
				{"Sec-Fetch-Site", "cross-site"},
				{"Origin", "null", "Sec-Fetch-Site", "cross-site"}, // a sandboxed iframe
				{"Origin", "http://sub.localhost.evil.example", "Sec-Fetch-Site", "same-site"},
			} {
				for _, action := range []struct{ method, path string }{
					{"POST", "/monitoring/api/queues/default:pause"},
					{"POST", "/monitoring/api/queues/default/pending_tasks:archive_all"},
					{"DELETE", "/monitoring/api/queues/default/pending_tasks:delete_all"},
				} {
					code, _, body := s.dashboardRequest(action.method, action.path, "", user, mode.password, append(form, attack...)...)
					if code != http.StatusForbidden {
						t.Errorf("%s %s with %v: %d %.200s, want 403", action.method, action.path, attack, code, body)
					}
				}
			}
			if s.paused("default") {
				t.Fatal("a cross-site POST paused the queue")
			}
			if pending, _ := s.inspector().ListPendingTasks("default"); len(pending) != 1 {
				t.Fatalf("%d pending jobs after the cross-site actions, want the 1 queued", len(pending))
			}
			// The dashboard's own page (same origin), and tools without a
			// browser's headers, still work.
			code, _, body := s.dashboardRequest("POST", "/monitoring/api/queues/default:pause", "", user, mode.password,
				"Origin", s.base, "Sec-Fetch-Site", "same-origin")
			if code >= 300 || !s.paused("default") {
				t.Fatalf("same-origin pause: %d %.200s, paused=%v", code, body, s.paused("default"))
			}
			code, _, body = s.dashboardRequest("POST", "/monitoring/api/queues/default:resume", "", user, mode.password)
			if code >= 300 || s.paused("default") {
				t.Fatalf("resume without browser headers: %d %.200s, paused=%v", code, body, s.paused("default"))
			}
			// Nor can a hostile page frame the dashboard to steer the operator's
			// clicks.
			if _, h, _ := s.dashboardRequest("GET", "/monitoring/", "", user, mode.password); h.Get("X-Frame-Options") != "DENY" {
				t.Fatalf("dashboard page X-Frame-Options %q, want DENY", h.Get("X-Frame-Options"))
			}
		})
	}
}

// Password guessing: after 10 wrong passwords from one address within a
// minute, that address is locked out — the right password included — and
// told when to come back.
func TestDashboardLocksOutPasswordGuessing(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{noWorker: true, dashboardPW: "dash-secret"})
	for i := range 10 {
		if code, _, _ := s.dashboardRequest("GET", "/monitoring/api/queues", "", "admin", "guess-"+strconv.Itoa(i)); code != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %d, want 401", i+1, code)
		}
	}
	for _, pass := range []string{"guess-10", "dash-secret"} {
		code, h, body := s.dashboardRequest("GET", "/monitoring/api/queues", "", "admin", pass)
		if code != http.StatusTooManyRequests {
			t.Fatalf("password %q after 10 failures: %d %.200s, want 429", pass, code, body)
		}
		if secs, err := strconv.Atoi(h.Get("Retry-After")); err != nil || secs < 1 || secs > 60 {
			t.Fatalf("Retry-After %q, want 1..60 seconds", h.Get("Retry-After"))
		}
		if strings.Contains(body, "default") {
			t.Fatalf("the locked-out answer shows queue data: %.200s", body)
		}
	}
	// The lockout guards the login only: the rest of errand still answers.
	if code, _ := s.get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz during the lockout: %d", code)
	}
}
