package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/jobs"
)

// A shop that drops its CRM lists user.registered's other jobs: a
// registration still greets the user and tells the rep, and nothing is sent
// to the CRM, or queued for it.
func TestEventWithATypeRemovedQueuesNothingOfIt(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{toml: welcomeAtOnce + `
[events."user.registered"]
jobs = ["user:welcome_email", "user:notify_staff"]
`})
	if code, body := s.post("/api/users", registration("ada@shop.test"), nil); code != 201 {
		t.Fatalf("registration: %d %v", code, body)
	}
	s.smtp.WaitFor(t, 1, 20*time.Second)
	s.waitFor(20*time.Second, "the rep's message", func() bool { return len(s.sandbox.Slack.Messages()) == 1 })
	// The three jobs would have been saved, and relayed, together.
	if ids := s.jobIDs("crm"); len(ids) != 0 {
		t.Fatalf("jobs on the crm queue: %v", ids)
	}
	if n := len(s.sandbox.Tidio.Contacts()); n != 0 {
		t.Fatalf("%d CRM contacts", n)
	}
	if n := len(s.worker.lines("user:sync_crm")); n != 0 {
		t.Fatalf("the worker ran user:sync_crm:\n%s", strings.Join(s.worker.lines("user:sync_crm"), "\n"))
	}
}

// WelcomeSMS is a side effect a shop adds to registration: its own job
// type, built from user.registered, listed in [events].
type WelcomeSMS struct {
	UserID int64  `json:"user_id"`
	Name   string `json:"name"`
}

func (WelcomeSMS) Kind() string           { return "test:welcome_sms" }
func (WelcomeSMS) Defaults() job.Defaults { return job.Defaults{Queue: "sms"} }

func (WelcomeSMS) Sources() []job.Source {
	return []job.Source{job.From(func(e jobs.UserRegistered) (WelcomeSMS, bool) {
		return WelcomeSMS{UserID: e.User.ID, Name: e.User.FirstName}, true
	})}
}

// smsSent records the welcome texts "sent".
type smsSent struct {
	mu   sync.Mutex
	sent []WelcomeSMS
}

func (h *smsSent) Work(_ context.Context, m WelcomeSMS) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sent = append(h.sent, m)
	return nil
}

func (h *smsSent) all() []WelcomeSMS {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.sent)
}

// A type added to an event runs with the payload it builds from the event,
// beside the event's default jobs.
func TestEventWithAnAddedTypeRunsIt(t *testing.T) {
	sms := &smsSent{}
	all := jobs.All
	jobs.All = append(slices.Clip(all), jobs.Of[WelcomeSMS](func(jobs.Deps) (*smsSent, error) { return sms, nil }))
	t.Cleanup(func() { jobs.All = all })

	s := startStack(t, stackOptions{toml: welcomeAtOnce + `
[events."user.registered"]
jobs = ["user:welcome_email", "user:notify_staff", "user:sync_crm", "test:welcome_sms"]
`})
	code, body := s.post("/api/users", registration("grace@shop.test"), nil)
	if code != 201 {
		t.Fatalf("registration: %d %v", code, body)
	}
	s.waitFor(20*time.Second, "the welcome text", func() bool { return len(sms.all()) > 0 })
	s.smtp.WaitFor(t, 1, 20*time.Second)
	s.waitFor(20*time.Second, "the rep's message and the CRM contact", func() bool {
		return len(s.sandbox.Slack.Messages()) == 1 && len(s.sandbox.Tidio.Contacts()) == 1
	})
	time.Sleep(500 * time.Millisecond)
	got := sms.all()
	if len(got) != 1 || got[0].Name != "Ada" || float64(got[0].UserID) != body["id"] {
		t.Fatalf("welcome texts %+v for user %v", got, body["id"])
	}
}

// A bad [events] or [[schedule]] stops the command at start with one line
// naming the key, and changes nothing: serve creates no database.
func TestBadEventsOrScheduleConfigRefusesToStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dbFile := filepath.Join(dir, "errand.db")
	base := "[database]\nurl = \"file:" + dbFile + "\"\n[http]\naddr = \"127.0.0.1:0\"\n"
	for _, c := range []struct {
		cmd, toml, want string
	}{
		{"serve", "[events.\"user.registered\"]\njobs = [\"user:welcome_email\", \"user:sync_crn\"]\n", `events."user.registered".jobs: unknown job type "user:sync_crn"`},
		{"serve", "[events.\"order.paid\"]\njobs = [\"order:push_fulfillment\", \"user:notify_staff\"]\n", `events."order.paid".jobs: user:notify_staff cannot be built from order.paid`},
		{"serve", "[events.\"order.refunded\"]\njobs = []\n", `events."order.refunded": errand raises no such event`},
		{"worker", "[[schedule]]\ntype = \"ops:noop\"\ncron = \"0 25 * * *\"\n", `schedule[1].cron: "0 25 * * *"`},
		{"worker", "[[schedule]]\ntype = \"ops:nope\"\nevery = \"1h\"\n", `schedule[1].type: unknown job type "ops:nope"`},
		{"schedule", "[[schedule]]\ntype = \"ops:noop\"\nevery = \"1h\"\ntimezone = \"Europe/Berlin\"\n", `schedule[1].timezone: applies to cron only`},
	} {
		path := filepath.Join(dir, "config.toml")
		if err := os.WriteFile(path, []byte(base+c.toml), 0o600); err != nil {
			t.Fatal(err)
		}
		args := []string{c.cmd, "--config", path}
		if c.cmd == "schedule" {
			args = append(args, "list")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		var out syncBuffer
		err := run(ctx, args, nil, &out, &out)
		cancel()
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("errand %s with %q: %v, want one line with %q\n%s", c.cmd, c.toml, err, c.want, out.String())
		}
		if _, err := os.Stat(dbFile); err == nil {
			t.Fatalf("errand %s created the database before refusing its configuration", c.cmd)
		}
	}
}
