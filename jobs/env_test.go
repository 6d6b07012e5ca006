package jobs_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/fulfillment"
	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/limit"
	"github.com/errandhq/errand/internal/mail"
	"github.com/errandhq/errand/internal/rdb/sharedlimit"
	"github.com/errandhq/errand/internal/redistest"
	"github.com/errandhq/errand/internal/sandbox"
	"github.com/errandhq/errand/internal/shopify"
	"github.com/errandhq/errand/internal/smtptest"
	"github.com/errandhq/errand/internal/store"
	"github.com/errandhq/errand/internal/tidio"
	"github.com/errandhq/errand/jobs"
)

// env is what `errand worker` hands the job handlers, every service real or
// a fake speaking its wire format: the fakes beside each service's client
// (served by the sandbox over HTTP, so faults can be injected), a real SMTP
// server, a real database and a real Redis. The handlers are built the way the
// worker builds them: jobs.Register, then jobs.Handle.
type env struct {
	t     *testing.T
	cfg   *config.Config
	fakes *sandbox.Sandbox
	smtp  *smtptest.Server
	store store.Store
	redis *redistest.Server
	reg   *job.Registry
	log   *logBuffer
}

// services is a configuration whose every service is the sandbox at url,
// with credentials the fakes check.
func services(url string) *config.Config {
	c := config.Default()
	c.SMTP.From = "Acme Shop <shop@acme.test>"
	c.Escalation.To = []string{"dev@acme.test"}
	c.Notify = config.Notify{
		Kind:             "slack",
		DefaultRep:       "alice",
		BaseURL:          url,
		TelegramBotToken: "123456:jobs-test-bot-token",
		Reps: map[string]config.Rep{
			"alice": {Name: "Alice", SlackWebhookURL: "https://hooks.slack.com/services/T000/B000/alice", TelegramChatID: "1001"},
			"bob":   {Name: "Bob", SlackWebhookURL: "https://hooks.slack.com/services/T000/B000/bob", TelegramChatID: "1002"},
		},
	}
	c.CRM = tidio.Config{BaseURL: url, ClientID: "tidio-client-id", ClientSecret: "tidio-client-secret"}
	c.Fulfill = fulfillment.Config{BaseURL: url, AppKey: "mabang-app-key", AppSecret: "mabang-app-secret"}
	c.Shopify = shopify.Config{Shop: "acme.myshopify.com", AccessToken: "shpat_jobs_test", APIVersion: shopify.DefaultAPIVersion, BaseURL: url}
	c.API.CallbackSecret = "jobs-test-callback-secret"
	c.API.AllowPrivateCallbacks = true // the test receivers listen on loopback
	return c
}

// newEnv starts the services and builds every handler from the
// configuration, changed first by edit.
func newEnv(t *testing.T, edit ...func(*config.Config)) *env {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	e := &env{t: t, cfg: services("http://" + srv.Listener.Addr().String()), smtp: smtptest.Start(t), redis: redistest.Start(t), log: &logBuffer{}}
	e.cfg.SMTP.Host, e.cfg.SMTP.Port, e.cfg.SMTP.Timeout = e.smtp.Host(), e.smtp.Port(), 5*time.Second
	for _, f := range edit {
		f(e.cfg)
	}
	e.fakes = sandbox.New(e.cfg)
	srv.Config.Handler = e.fakes.Handler()
	srv.Start()
	t.Cleanup(srv.Close)

	st, err := store.Open("file:" + filepath.Join(t.TempDir(), "errand.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.store = st
	e.reg = registry(t, e.cfg)
	if err := jobs.Handle(e.reg, e.deps(), func(string) bool { return true }); err != nil {
		t.Fatalf("the handlers did not build: %v", err)
	}
	return e
}

// registry is the registry every errand process starts with: every type,
// no handler yet.
func registry(t *testing.T, cfg *config.Config) *job.Registry {
	t.Helper()
	reg := job.NewRegistry(cfg)
	jobs.Register(reg)
	if err := reg.Configure(cfg.Jobs); err != nil {
		t.Fatal(err)
	}
	return reg
}

func (e *env) deps() jobs.Deps {
	e.t.Helper()
	m, err := mail.New(e.cfg.SMTP)
	if err != nil {
		e.t.Fatal(err)
	}
	gate, err := limit.New(e.redis.Client(), e.cfg.Limits)
	if err != nil {
		e.t.Fatal(err)
	}
	return jobs.Deps{Config: e.cfg, Log: slog.New(slog.NewTextHandler(e.log, nil)), Mailer: m.WithGate(gate),
		Store: e.store, Registry: e.reg, Redis: e.redis.Client(), Gate: gate}
}

// run runs one attempt of a job of args as the worker does: its payload as
// it would be queued, through its type's handler, logging to e.log.
func (e *env) run(args job.Args) error {
	e.t.Helper()
	env, err := e.reg.Prepare(args)
	if err != nil {
		e.t.Fatalf("prepare %s: %v", args.Kind(), err)
	}
	return runPayload(e.reg, e.log, env.Type, env.Payload)
}

// runPayload runs one attempt of the job typ with payload through reg.
func runPayload(reg *job.Registry, log *logBuffer, typ string, payload []byte) error {
	def, err := reg.Lookup(typ)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), def.Timeout)
	defer cancel()
	ctx, _ = job.WithLogger(ctx, func() *slog.Logger { return slog.New(slog.NewTextHandler(log, nil)).With("type", typ) })
	return def.Work(ctx, payload)
}

// wantClass fails unless err is an error of class want whose text holds
// every one of texts.
func wantClass(t *testing.T, err error, want errand.Class, texts ...string) time.Duration {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want a %s one", want)
	}
	class, wait := errand.ClassOf(err)
	if class != want {
		t.Fatalf("class %s, want %s: %v", class, want, err)
	}
	for _, s := range texts {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("the error does not say %q: %v", s, err)
		}
	}
	return wait
}

// logBuffer collects log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// timePasses stands for the time a service's hold or rate lasts passing: its
// record is deleted from Redis, and the handlers are built again, as a
// worker started afterwards has them (a worker's gate keeps what it learnt
// of the service's hold).
func (e *env) timePasses(service string) {
	e.t.Helper()
	if err := e.redis.Client().Del(context.Background(), sharedlimit.LimitKey(service)).Err(); err != nil {
		e.t.Fatal(err)
	}
	e.reg = registry(e.t, e.cfg)
	if err := jobs.Handle(e.reg, e.deps(), func(string) bool { return true }); err != nil {
		e.t.Fatalf("the handlers did not build: %v", err)
	}
}
