package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
)

// An SMTP 5xx is permanent: one attempt, then the developers' email.
func TestSMTPRefusalEscalatesAfterOneAttempt(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{toml: fastRetries})
	s.smtp.RejectRecipients("@bounce.test", 550, "5.1.1 mailbox unavailable")
	if status, body := s.post("/api/users", registration("gone@bounce.test"), nil); status != http.StatusCreated {
		t.Fatalf("register: %d %v", status, body)
	}
	s.waitFor(15*time.Second, "the escalation email", func() bool { return len(s.escalations()) == 1 })
	esc := s.escalations()[0]
	failed := s.failed()
	if len(failed) != 1 {
		t.Fatalf("failed list: %v", failed)
	}
	job := failed[0]
	if job["type"] != "user:welcome_email" || job["attempts"] != 1.0 || job["max_attempts"] != 3.0 {
		t.Fatalf("failed job: %v", job)
	}
	if n := len(s.worker.lines("job_id="+job["id"].(string), "attempt=")); n == 0 {
		t.Fatal("the worker's job lines carry no job id and attempt")
	}
	if tries := s.smtp.RecipientAttempts("gone@bounce.test"); tries != 1 {
		t.Fatalf("the refused email was tried %d times; a 5xx must not be retried", tries)
	}
	for _, want := range []string{
		"user:welcome_email", job["id"].(string), "emails", "1 of 3", "550", "permanent",
		"gone@bounce.test", "/monitoring/queues/emails/tasks/" + job["id"].(string), "first queued",
	} {
		if !strings.Contains(esc.Text, want) {
			t.Errorf("escalation text lacks %q:\n%s", want, esc.Text)
		}
	}
	if !strings.Contains(esc.HTML, job["id"].(string)) {
		t.Error("escalation HTML lacks the job id")
	}
	if !strings.Contains(esc.Subject, "failed for good") {
		t.Errorf("escalation subject %q", esc.Subject)
	}
}

// SMTP unreachable: exactly 3 attempts, then one escalation, delivered as
// soon as SMTP is back; the failed job stays in the failed list.
func TestSMTPDownThreeAttemptsThenEscalation(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{toml: fastRetries})
	s.smtp.Down()
	if status, body := s.post("/api/users", registration("ada@shop.test"), nil); status != http.StatusCreated {
		t.Fatalf("register: %d %v", status, body)
	}
	var job map[string]any
	s.waitFor(20*time.Second, "the job in the failed list", func() bool {
		if f := s.failed(); len(f) == 1 {
			job = f[0]
			return true
		}
		return false
	})
	id := job["id"].(string)
	if job["attempts"] != 3.0 {
		t.Fatalf("failed after %v attempts, want 3: %v", job["attempts"], job)
	}
	retries := s.worker.lines("job_id="+id, "will retry")
	finals := s.worker.lines("job_id="+id, "failed for good")
	if len(retries) != 2 || len(finals) != 1 {
		t.Fatalf("want 2 retries and 1 final failure in the log, got %d and %d", len(retries), len(finals))
	}
	// The escalation cannot be sent yet; it is logged at ERROR meanwhile.
	s.waitFor(15*time.Second, "the escalation to be tried and logged", func() bool {
		return len(s.worker.lines("level=ERROR", "escalation email not sent", "job_id="+id)) > 0
	})
	up := time.Now()
	s.smtp.Up()
	s.waitFor(15*time.Second, "the escalation email", func() bool { return len(s.escalations()) > 0 })
	esc := s.escalations()
	failedAt, _ := time.Parse(time.RFC3339Nano, job["failed_at"].(string))
	t.Logf("3rd failure → escalation email: %s (SMTP was down for part of it); SMTP back → email: %s",
		esc[0].ReceivedAt.Sub(failedAt).Round(time.Millisecond), esc[0].ReceivedAt.Sub(up).Round(time.Millisecond))
	if len(esc) != 1 || !strings.Contains(esc[0].Text, "3 of 3") || !strings.Contains(esc[0].Text, id) {
		t.Fatalf("want one escalation naming the job and 3 of 3 attempts; got %d: %s", len(esc), esc[0].Text)
	}
	if len(s.mailTo("ada@shop.test")) != 0 {
		t.Fatal("the failed welcome email was sent after all")
	}
	if len(s.failed()) != 1 {
		t.Fatal("the failed job left the failed list")
	}
	// `failed retry` gives it its full attempts again, and now it is delivered.
	out, err := s.cli("failed", "retry", id)
	if err != nil || !strings.Contains(out, "queued again") {
		t.Fatalf("failed retry: %v %s", err, out)
	}
	s.waitFor(15*time.Second, "the retried welcome email", func() bool { return len(s.mailTo("ada@shop.test")) == 1 })
	if len(s.failed()) != 0 {
		t.Fatal("the retried job is still in the failed list")
	}
}

// Thirty final failures within the window go out as one digest, not thirty
// emails.
func TestFailuresWithinWindowGoOutAsOneDigest(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{toml: fastRetries})
	s.smtp.RejectRecipients("@bounce.test", 550, "5.1.1 mailbox unavailable")
	for i := range 30 {
		payload := fmt.Sprintf(`{"user_id":%d,"email":"u%d@bounce.test","first_name":"U%d"}`, i, i, i)
		s.enqueue("user:welcome_email", payload)
	}
	s.waitFor(20*time.Second, "30 failed jobs", func() bool { return len(s.failed()) == 30 })
	s.waitFor(15*time.Second, "the digest", func() bool { return len(s.escalations()) > 0 })
	time.Sleep(3 * time.Second) // a window more: no further emails may follow
	esc := s.escalations()
	listed := 0
	for _, m := range esc {
		listed += strings.Count(m.Text, "user:welcome_email — job ")
	}
	t.Logf("30 final failures → %d escalation email(s) listing %d failures", len(esc), listed)
	if len(esc) != 1 {
		t.Fatalf("30 failures within the window sent %d emails, want one digest", len(esc))
	}
	if listed != 30 || !strings.Contains(esc[0].Subject, "30 jobs failed") {
		t.Fatalf("the digest lists %d failures (subject %q)", listed, esc[0].Subject)
	}
}

// A payload that does not decode in the worker (queued around errand's own
// checks, e.g. by an older version or by hand) is permanent: one attempt,
// never retried, escalated.
func TestUndecodablePayloadIsPermanent(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{toml: fastRetries})
	client := s.foreignClient()
	for _, p := range []string{`{"email": 42}`, `not json`, `{"user_id":1,"email":"","first_name":""}`} {
		if _, err := client.Enqueue(asynq.NewTask("user:welcome_email", []byte(p)), asynq.Queue("emails"), asynq.MaxRetry(5)); err != nil {
			t.Fatal(err)
		}
	}
	s.waitFor(20*time.Second, "3 failed jobs", func() bool { return len(s.failed()) == 3 })
	s.waitFor(15*time.Second, "the escalation", func() bool { return len(s.escalations()) == 1 })
	for _, f := range s.failed() {
		if f["attempts"] != 1.0 || !strings.Contains(f["error"].(string), "invalid payload") {
			t.Fatalf("failed job: %v", f)
		}
	}
	if n := len(s.worker.lines("will retry")); n != 0 {
		t.Fatalf("an undecodable payload was retried %d times", n)
	}
	esc := s.escalations()[0]
	if !strings.Contains(esc.Text, "3 jobs failed") || !strings.Contains(esc.Text, "permanent") {
		t.Fatalf("escalation:\n%s", esc.Text)
	}
}
