package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The walk of README: register, and the welcome email arrives 5 seconds later
// with an HTML and a text part; the password is nowhere in it.
func TestRegistrationSendsWelcomeEmailAfterFiveSeconds(t *testing.T) {
	s := startStack(t, stackOptions{})
	sent := time.Now()
	status, body := s.post("/api/users", registration("ada@shop.test"), nil)
	answered := time.Since(sent)
	if status != http.StatusCreated {
		t.Fatalf("POST /api/users = %d %v", status, body)
	}
	if body["id"] == nil || body["email"] != "ada@shop.test" {
		t.Fatalf("201 body: %v", body)
	}
	if _, ok := body["password"]; ok {
		t.Fatal("the answer carries the password")
	}
	for k := range body {
		if strings.Contains(k, "password") {
			t.Fatalf("the answer carries %q", k)
		}
	}
	msgs := s.smtp.WaitFor(t, 1, 20*time.Second)
	m := msgs[0]
	delay := m.ReceivedAt.Sub(sent)
	t.Logf("registration answered in %s; welcome email delivered %s after the request", answered.Round(time.Millisecond), delay.Round(time.Millisecond))
	if delay < 5*time.Second {
		t.Fatalf("welcome email arrived %s after registration, before its 5 s delay", delay)
	}
	if delay > 7*time.Second {
		t.Errorf("welcome email arrived %s after registration; expected about 5 s", delay)
	}
	if len(m.To) != 1 || m.To[0] != "ada@shop.test" {
		t.Fatalf("recipients %v", m.To)
	}
	if !strings.Contains(m.Subject, "Welcome, Ada") {
		t.Errorf("subject %q", m.Subject)
	}
	if !strings.Contains(m.Text, "Hi Ada") || !strings.Contains(m.Text, "Acme Shop") {
		t.Errorf("text part: %q", m.Text)
	}
	if !strings.Contains(m.HTML, "<h1") || !strings.Contains(m.HTML, "Welcome, Ada!") {
		t.Errorf("html part: %q", m.HTML)
	}
	if strings.Contains(string(m.Raw), "correct horse battery") {
		t.Fatal("the password is in the email")
	}
	time.Sleep(500 * time.Millisecond)
	if n := len(s.smtp.Messages()); n != 1 {
		t.Fatalf("%d emails sent for one registration", n)
	}
	// The password reached neither Redis nor a log line.
	for k, text := range s.redisText() {
		if strings.Contains(text, "correct horse battery") {
			t.Fatalf("the password is in Redis key %s", k)
		}
	}
	if strings.Contains(s.serve.String()+s.worker.String(), "correct horse battery") {
		t.Fatal("the password is in a log line")
	}
}

// Bad input gets a clear error and changes nothing: no user stored, no job queued.
func TestRegistrationRejectsBadInput(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{noWorker: true})
	if status, body := s.post("/api/users", registration("first@shop.test"), nil); status != http.StatusCreated {
		t.Fatalf("first registration: %d %v", status, body)
	}
	huge := fmt.Sprintf(`{"email":"big@shop.test","first_name":"%s","last_name":"x","password":"12345678"}`, strings.Repeat("a", 1<<20))
	for _, tc := range []struct {
		name   string
		body   any
		status int
		field  string
	}{
		{"malformed JSON", `{"email": "x@shop.test",`, 400, ""},
		{"not an object", `[1,2]`, 400, ""},
		{"over 1 MiB", huge, 413, ""},
		{"bad email", map[string]any{"email": "not-an-email", "first_name": "A", "last_name": "B", "password": "12345678"}, 422, "email"},
		{"short password", map[string]any{"email": "p@shop.test", "first_name": "A", "last_name": "B", "password": "123"}, 422, "password"},
		{"missing names", map[string]any{"email": "n@shop.test", "password": "12345678"}, 422, "first_name"},
		{"wrong type", `{"email": 42, "first_name":"A","last_name":"B","password":"12345678"}`, 422, "email"},
		{"already registered", registration("FIRST@shop.test"), 409, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := s.post("/api/users", tc.body, nil)
			if status != tc.status {
				t.Fatalf("status %d, want %d (%v)", status, tc.status, body)
			}
			if body["error"] == nil || body["error"] == "" {
				t.Fatalf("no error message: %v", body)
			}
			if tc.field != "" {
				fields, _ := body["fields"].(map[string]any)
				if fields[tc.field] == nil {
					t.Fatalf("no message for field %s: %v", tc.field, body)
				}
				if tc.status == 422 && body["error"] != "validation failed" {
					t.Fatalf("error %v", body["error"])
				}
			}
		})
	}
	// Only the first registration's three jobs were queued: the welcome
	// email (scheduled, 5 s), the sales rep's message and the CRM contact.
	s.waitFor(5*time.Second, "the relay", func() bool {
		out, _ := s.cli("queues", "--json")
		return strings.Contains(out, `"scheduled": 1`)
	})
	time.Sleep(500 * time.Millisecond)
	out, _ := s.cli("queues", "--json")
	var qs []map[string]any
	if err := json.Unmarshal([]byte(out), &qs); err != nil {
		t.Fatalf("queues --json: %v: %s", err, out)
	}
	total := 0.0
	for _, q := range qs {
		total += q["pending"].(float64) + q["scheduled"].(float64)
	}
	if total != 3 {
		t.Fatalf("%v jobs queued; want only the first registration's three: %s", total, out)
	}
}
