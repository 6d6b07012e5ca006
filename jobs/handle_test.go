package jobs_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/jobs"
)

// handleWith builds the handlers as a worker on cfg taking queues does (every
// queue when none is named), with e's database, Redis and mailer.
func (e *env) handleWith(cfg *config.Config, queues ...string) (*job.Registry, error) {
	e.t.Helper()
	reg := registry(e.t, cfg)
	d := e.deps()
	d.Config, d.Registry = cfg, reg
	return reg, jobs.Handle(reg, d, func(q string) bool { return len(queues) == 0 || slices.Contains(queues, q) })
}

// Every type of jobs.All is registered for queuing, and a worker gives each
// one its handler.
func TestEveryJobTypeGetsItsHandler(t *testing.T) {
	e := newEnv(t)
	var kinds []string
	for _, j := range jobs.All {
		kinds = append(kinds, j.Kind())
		def, err := e.reg.Lookup(j.Kind())
		if err != nil || def.Work == nil {
			t.Errorf("%s: registered %v, handler %v", j.Kind(), err, def != nil && def.Work != nil)
		}
	}
	slices.Sort(kinds)
	if got := e.reg.Types(); !slices.Equal(got, kinds) || len(kinds) != len(slices.Compact(slices.Clone(kinds))) {
		t.Fatalf("registered %v, jobs.All %v", got, kinds)
	}
	if err := e.run(jobs.Noop{}); err != nil {
		t.Fatal(err)
	}
}

// A worker at the defaults — no CRM, fulfillment platform, shop or sales
// reps — cannot run their jobs: building their handlers fails at once, in
// one line naming each job, its queue and the keys to set.
func TestWorkerWithoutTheServicesSettingsStopsNamingTheKeys(t *testing.T) {
	e := newEnv(t)
	cfg := config.Default()
	cfg.SMTP = e.cfg.SMTP
	_, err := e.handleWith(cfg)
	if err == nil {
		t.Fatal("the handlers built without the services' settings")
	}
	msg := err.Error()
	for _, want := range []string{
		"user:notify_staff (queue notifications): notify.reps: at least one rep must be configured",
		"user:sync_crm (queue crm): tidio: not configured: crm.client_id: must be set; crm.client_secret: must be set",
		"order:push_fulfillment (queue fulfillment): fulfillment: not configured: fulfillment.base_url: must be set",
		"order:sync_tracking (queue shopify): shopify: not configured: shopify.shop (or shopify.base_url): must be set",
		"--queues",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("the error does not say %q:\n%s", want, msg)
		}
	}
	for _, fine := range []string{"user:welcome_email", "ops:escalate", "ops:callback", "ops:reconcile_shipments", "ops:noop"} {
		if strings.Contains(msg, fine) {
			t.Errorf("the error names %s, which needs nothing missing:\n%s", fine, msg)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("not one line: %q", msg)
	}
}

// One key missing names that key and its job only, and never shows the
// secrets that are set.
func TestOneMissingKeyIsNamed(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		key    string
		mutate func(c *config.Config)
		want   string
	}{
		{"crm.client_secret", func(c *config.Config) { c.CRM.ClientSecret = "" }, "user:sync_crm (queue crm): tidio: not configured: crm.client_secret: must be set"},
		{"fulfillment.app_secret", func(c *config.Config) { c.Fulfill.AppSecret = "" }, "order:push_fulfillment (queue fulfillment): fulfillment: not configured: fulfillment.app_secret: must be set"},
		{"shopify.access_token", func(c *config.Config) { c.Shopify.AccessToken = "" }, "order:sync_tracking (queue shopify): shopify: not configured: shopify.access_token: must be set"},
		{"notify.telegram_bot_token", func(c *config.Config) { c.Notify.Kind, c.Notify.TelegramBotToken = "telegram", "" }, "user:notify_staff (queue notifications): notify.telegram_bot_token: must be set (notify.kind is telegram)"},
		{"notify.default_rep", func(c *config.Config) { c.Notify.DefaultRep = "carol" }, `user:notify_staff (queue notifications): notify.default_rep: "carol" is not in [notify.reps]`},
	} {
		cfg := services(e.cfg.CRM.BaseURL)
		cfg.SMTP = e.cfg.SMTP
		tc.mutate(cfg)
		_, err := e.handleWith(cfg)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want+" — ") {
			t.Errorf("without %s: %v\nwant it to start with %q", tc.key, err, tc.want)
			continue
		}
		for _, secret := range []string{cfg.CRM.ClientSecret, cfg.Fulfill.AppSecret, cfg.Shopify.AccessToken, cfg.Notify.TelegramBotToken} {
			if secret != "" && strings.Contains(err.Error(), secret) {
				t.Errorf("without %s the error shows a secret: %v", tc.key, err)
			}
		}
	}
}

// A worker that does not take a job's queue needs none of its service's
// settings (`errand worker --queues emails` without [crm]); a job of it sent
// there anyway fails for good, saying why, instead of waiting for ever.
func TestWorkerOnOtherQueuesNeedsNotTheirSettings(t *testing.T) {
	e := newEnv(t)
	cfg := config.Default()
	cfg.SMTP = e.cfg.SMTP
	reg, err := e.handleWith(cfg, "emails", "critical", "default")
	if err != nil {
		t.Fatalf("a worker on emails, critical and default: %v", err)
	}
	env, err := reg.Prepare(ada)
	if err != nil {
		t.Fatal(err)
	}
	if err := runPayload(reg, e.log, env.Type, env.Payload); err != nil {
		t.Fatalf("the welcome email: %v", err)
	}
	env, err = reg.Prepare(jobs.SyncCRM{Email: "ada@shop.test", Changed: map[string]string{"first_name": "Ada"}})
	if err != nil {
		t.Fatal(err)
	}
	wantClass(t, runPayload(reg, e.log, env.Type, env.Payload), errand.Permanent,
		"user:sync_crm cannot run on this worker: tidio: not configured: crm.client_id: must be set")
	if _, err := e.handleWith(cfg, "crm"); err == nil || !strings.Contains(err.Error(), "crm.client_id") {
		t.Fatalf("a worker on crm without [crm]: %v", err)
	}
}
