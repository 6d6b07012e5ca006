package jobs_test

import (
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/sandbox"
	"github.com/errandhq/errand/internal/slack/slacktest"
	"github.com/errandhq/errand/internal/telegram/telegramtest"
	"github.com/errandhq/errand/jobs"
)

// The registration's sales rep hears of the new customer on Slack, else
// notify.default_rep; the customer's own words cannot become Slack markup.
func TestNotifyStaffOverSlack(t *testing.T) {
	e := newEnv(t)
	if err := e.run(jobs.NotifyStaff{UserID: 7, Email: "ada@shop.test", FirstName: "<!channel>", LastName: "Lovelace", SalesRep: "bob"}); err != nil {
		t.Fatal(err)
	}
	if err := e.run(jobs.NotifyStaff{Email: "grace@shop.test", FirstName: "Grace"}); err != nil {
		t.Fatal(err)
	}
	got := e.fakes.Slack.Messages()
	if len(got) != 2 {
		t.Fatalf("messages: %+v", got)
	}
	if got[0].Hook != "/services/T000/B000/bob" || got[0].Text != "New customer for Bob: &lt;!channel&gt; Lovelace (ada@shop.test) just registered, user #7." {
		t.Errorf("to the named rep: %+v", got[0])
	}
	if got[1].Hook != "/services/T000/B000/alice" || got[1].Text != "New customer for Alice: Grace (grace@shop.test) just registered." {
		t.Errorf("to the default rep: %+v", got[1])
	}
}

// A rep errand does not know cannot be told by retrying; Slack's 429 is
// waited out without using an attempt.
func TestNotifyStaffFailureClasses(t *testing.T) {
	e := newEnv(t)
	wantClass(t, e.run(jobs.NotifyStaff{Email: "ada@shop.test", SalesRep: "carol"}), errand.Permanent, `unknown sales rep "carol"`)
	e.fakes.AddFault(sandbox.Fault{Service: slacktest.Service, Status: 429, RetryAfter: 7, Count: 1})
	if wait := wantClass(t, e.run(jobs.NotifyStaff{Email: "ada@shop.test"}), errand.Throttled); wait != 7*time.Second {
		t.Errorf("waits %s, want the 7s Slack asked for", wait)
	}
	// Slack is now held for every worker: the next job does not call it and
	// waits out the rest of the 7s, again without an attempt.
	calls := len(e.fakes.Slack.Messages())
	if wait := wantClass(t, e.run(jobs.NotifyStaff{Email: "ada@shop.test"}), errand.Throttled, "held"); wait <= 5*time.Second || wait > 7*time.Second {
		t.Errorf("held Slack: waits %s, want the rest of the 7s", wait)
	}
	if n := len(e.fakes.Slack.Messages()); n != calls {
		t.Fatalf("a held Slack was called")
	}
	e.timePasses("slack")
	e.fakes.AddFault(sandbox.Fault{Service: slacktest.Service, Status: 500, Count: 1})
	wantClass(t, e.run(jobs.NotifyStaff{Email: "ada@shop.test"}), errand.Transient)
	if n := len(e.fakes.Slack.Messages()); n != 0 {
		t.Fatalf("%d messages sent", n)
	}
}

// With notify.kind = "telegram" the rep's chat gets the message from the bot,
// and the Bot API's retry_after is the wait.
func TestNotifyStaffOverTelegram(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.Notify.Kind = "telegram" })
	if err := e.run(jobs.NotifyStaff{UserID: 7, Email: "ada@shop.test", FirstName: "Ada", SalesRep: "bob"}); err != nil {
		t.Fatal(err)
	}
	got := e.fakes.Telegram.Messages()
	if len(got) != 1 || got[0].ChatID != "1002" || got[0].Text != "New customer for Bob: Ada (ada@shop.test) just registered, user #7." {
		t.Fatalf("messages: %+v", got)
	}
	if n := len(e.fakes.Slack.Messages()); n != 0 {
		t.Fatalf("%d Slack messages", n)
	}
	e.fakes.AddFault(sandbox.Fault{Service: telegramtest.Service, Throttle: true, Count: 1})
	if wait := wantClass(t, e.run(jobs.NotifyStaff{Email: "ada@shop.test"}), errand.Throttled); wait != telegramtest.RetryAfter*time.Second {
		t.Errorf("waits %s, want the Bot API's retry_after of %ds", wait, telegramtest.RetryAfter)
	}
}
