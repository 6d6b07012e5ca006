package jobs_test

import (
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/fulfillment/fulfillmenttest"
	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/shopify/shopifytest"
	"github.com/errandhq/errand/internal/slack/slacktest"
	"github.com/errandhq/errand/internal/telegram/telegramtest"
	"github.com/errandhq/errand/internal/tidio/tidiotest"
	"github.com/errandhq/errand/jobs"
)

// Every service's calls wait for its [limits] rate, each call on its own: a
// call over the rate is refused before it reaches the service, as a
// throttled error (no attempt used) — a job refused half-way has done
// nothing and is safe to run again — except that a job's later call waits in
// place for a token that comes soon, so a job of two calls completes under a
// burst of 1.
func TestEveryServiceCallWaitsForItsLimit(t *testing.T) {
	const order = 820982911946154508
	for _, c := range []struct {
		service string
		fake    string // the sandbox's name for it; "" for smtp
		kind    string // notify.kind
		prepare func(e *env) job.Args
		calls   int // calls one job makes
		done    func(e *env) int
	}{
		{service: "smtp", prepare: func(*env) job.Args { return jobs.WelcomeEmail{UserID: 1, Email: "ada@shop.test", FirstName: "Ada"} },
			calls: 1, done: func(e *env) int { return len(e.smtp.Messages()) }},
		{service: "slack", fake: slacktest.Service, prepare: func(*env) job.Args { return jobs.NotifyStaff{Email: "ada@shop.test", SalesRep: "bob"} },
			calls: 1, done: func(e *env) int { return len(e.fakes.Slack.Messages()) }},
		{service: "telegram", fake: telegramtest.Service, kind: "telegram", prepare: func(*env) job.Args { return jobs.NotifyStaff{Email: "ada@shop.test", SalesRep: "bob"} },
			calls: 1, done: func(e *env) int { return len(e.fakes.Telegram.Messages()) }},
		{service: "fulfillment", fake: fulfillmenttest.Service, prepare: func(e *env) job.Args { e.saveOrder(order); return jobs.PushFulfillment{OrderID: order} },
			calls: 1, done: func(e *env) int { return len(e.fakes.Fulfillment.Orders()) }},
		// A look-up, then a create.
		{service: "tidio", fake: tidiotest.Service, prepare: func(*env) job.Args {
			contact := map[string]string{"email": "ada@shop.test", "first_name": "Ada"}
			return jobs.SyncCRM{UserID: 7, Email: "ada@shop.test", Changed: contact, Contact: contact}
		}, calls: 2, done: func(e *env) int { return len(e.fakes.Tidio.Contacts()) }},
		// The order query, then fulfillmentCreate.
		{service: "shopify", fake: shopifytest.Service, prepare: func(e *env) job.Args {
			e.fakes.Shopify.AddOrder(order, 1)
			return e.saveShipment(order, "1Z999")
		}, calls: 2, done: func(e *env) int { return len(e.fakes.Shopify.Fulfillments(order)) }},
	} {
		t.Run(c.service, func(t *testing.T) {
			env := func(rate string) (*env, func() int) {
				e := newEnv(t, func(cfg *config.Config) {
					cfg.Limits = map[string]config.Limit{c.service: {Rate: rate}}
					if c.kind != "" {
						cfg.Notify.Kind = c.kind
					}
				})
				return e, func() int {
					if c.fake == "" {
						return e.smtp.Attempts()
					}
					return len(e.fakes.Calls(c.fake))
				}
			}
			// One call an hour: the job's first call goes; a later one would
			// wait longer than a job waits in place, so the run is refused
			// half-way, having done nothing; the next run is refused before
			// its first call.
			e, calls := env("1/1h")
			args := c.prepare(e)
			err := e.run(args)
			if c.calls == 1 && err != nil {
				t.Fatal(err)
			}
			if c.calls > 1 {
				wantClass(t, err, errand.Throttled, c.service+" over its rate")
				if n := c.done(e); n != 0 {
					t.Fatalf("%d done at %s by a run refused half-way", n, c.service)
				}
			}
			if n := calls(); n != 1 {
				t.Fatalf("%s called %d times at one call an hour", c.service, n)
			}
			wantClass(t, e.run(args), errand.Throttled, c.service+" over its rate")
			if n := calls(); n != 1 {
				t.Fatalf("%s called %d times at one call an hour", c.service, n)
			}
			if c.calls == 1 {
				return
			}
			// One call a second: the run's later call waits in place for its
			// token, and the job is done in one run, which lasts the second
			// its later call waited.
			e, calls = env("1/1s")
			args = c.prepare(e)
			start := time.Now()
			if err := e.run(args); err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took < 950*time.Millisecond {
				t.Errorf("a run of %d calls at one a second took %s", c.calls, took)
			}
			if n := c.done(e); n != 1 || calls() != c.calls {
				t.Fatalf("%d done at %s in %d calls", n, c.service, calls())
			}
		})
	}
}
