package jobs_test

import (
	"strings"
	"testing"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/jobs"
)

var ada = jobs.WelcomeEmail{UserID: 7, Email: "ada@shop.test", FirstName: "Ada", LastName: "Lovelace"}

// The welcome email goes to the customer over SMTP, in text and HTML, signed
// with the shop's name from smtp.from.
func TestWelcomeEmailIsSent(t *testing.T) {
	e := newEnv(t)
	if err := e.run(ada); err != nil {
		t.Fatal(err)
	}
	msgs := e.smtp.Messages()
	if len(msgs) != 1 || len(msgs[0].To) != 1 || msgs[0].To[0] != "ada@shop.test" {
		t.Fatalf("messages: %+v", msgs)
	}
	m := msgs[0]
	if m.Subject != "Welcome, Ada!" || !strings.Contains(m.Text, "Acme Shop") || !strings.Contains(m.HTML, "Acme Shop") {
		t.Fatalf("subject %q, text %q, html %q", m.Subject, m.Text, m.HTML)
	}
}

// A 4xx from the mail server is worth retrying; a 5xx is final.
func TestWelcomeEmailFailureClasses(t *testing.T) {
	e := newEnv(t)
	e.smtp.RejectTemporarily(451, "try again later")
	wantClass(t, e.run(ada), errand.Transient, "451")
	e.smtp.RejectPermanently(550, "no such mailbox")
	wantClass(t, e.run(ada), errand.Permanent, "550")
	if n := len(e.smtp.Messages()); n != 0 {
		t.Fatalf("%d messages accepted", n)
	}
}
