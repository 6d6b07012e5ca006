package jobs_test

import (
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/jobs"
)

var digest = jobs.Digest{Failures: []jobs.Failure{
	{ID: "J1", Type: "user:sync_crm", Queue: "crm", Attempts: 3, MaxAttempts: 3, Class: "transient", Error: "tidio: HTTP 502",
		Payload: `{"email":"ada@shop.test"}`, QueuedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), FailedAt: time.Date(2026, 1, 2, 3, 9, 5, 0, time.UTC)},
	{ID: "J2", Type: "user:sync_crm", Queue: "crm", Attempts: 3, MaxAttempts: 3, Class: "transient", Error: "tidio: HTTP 502"},
}}

// The developers get one email per digest, naming every job with a link to
// it in the dashboard.
func TestEscalationEmailsTheDevelopers(t *testing.T) {
	e := newEnv(t)
	if err := e.run(digest); err != nil {
		t.Fatal(err)
	}
	msgs := e.smtp.Messages()
	if len(msgs) != 1 || len(msgs[0].To) != 1 || msgs[0].To[0] != "dev@acme.test" {
		t.Fatalf("messages: %+v", msgs)
	}
	m := msgs[0]
	if m.Subject != "[errand] 2 jobs failed for good: user:sync_crm ×2" {
		t.Errorf("subject %q", m.Subject)
	}
	for _, want := range []string{"job J1", "job J2", "3 of 3", "tidio: HTTP 502", "http://localhost:8080/monitoring/queues/crm/tasks/J1"} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("the email does not say %q:\n%s", want, m.Text)
		}
	}
}

// An escalation that cannot be sent is retried (transient), and meanwhile
// every failure is in the log at ERROR: a final failure is never silent.
func TestEscalationNotSentIsLoggedAndRetried(t *testing.T) {
	e := newEnv(t)
	e.smtp.RejectTemporarily(421, "service not available")
	wantClass(t, e.run(digest), errand.Transient, "421")
	for _, id := range []string{"J1", "J2"} {
		if !strings.Contains(e.log.String(), "level=ERROR msg=\"escalation email not sent; will retry\" job_id="+id) {
			t.Errorf("no ERROR line for %s:\n%s", id, e.log)
		}
	}
}

// Without escalation.to the failures are logged only.
func TestEscalationWithoutRecipientsLogs(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.Escalation.To = nil })
	if err := e.run(digest); err != nil {
		t.Fatal(err)
	}
	if n := len(e.smtp.Messages()); n != 0 {
		t.Fatalf("%d emails", n)
	}
	if n := strings.Count(e.log.String(), "final failure (escalation.to is empty, so no email is sent)"); n != 2 {
		t.Fatalf("%d log lines, want 2:\n%s", n, e.log)
	}
}

// Under [limits.smtp] the welcome emails and the escalations share one
// rate: an escalation over it waits its turn — a throttled error, so it is
// run again without using an attempt, with one WARN line and none of the
// ERROR lines of a failed send — and goes when the rate allows.
func TestEscalationWaitsForTheSMTPRate(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.Limits = map[string]config.Limit{"smtp": {Rate: "1/1h"}}
	})
	if err := e.run(jobs.WelcomeEmail{UserID: 1, Email: "ada@shop.test", FirstName: "Ada"}); err != nil {
		t.Fatal(err)
	}
	wantClass(t, e.run(jobs.WelcomeEmail{UserID: 2, Email: "bob@shop.test", FirstName: "Bob"}), errand.Throttled, "smtp over its rate")
	wait := wantClass(t, e.run(digest), errand.Throttled, "smtp over its rate")
	if wait < 59*time.Minute {
		t.Errorf("the escalation waits %s for a rate of one an hour", wait)
	}
	if n := len(e.smtp.Messages()); n != 1 {
		t.Fatalf("%d emails sent over a rate of one", n)
	}
	if log := e.log.String(); strings.Contains(log, "level=ERROR") || !strings.Contains(log, `level=WARN msg="escalation email waits for the smtp rate limit" failures=2`) {
		t.Errorf("log:\n%s", log)
	}
	// The hour has passed.
	e.timePasses("smtp")
	if err := e.run(digest); err != nil {
		t.Fatal(err)
	}
	if msgs := e.smtp.Messages(); len(msgs) != 2 || msgs[1].To[0] != "dev@acme.test" {
		t.Fatalf("messages: %+v", msgs)
	}
}
