package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/limit"
	"github.com/errandhq/errand/internal/mail"
	"github.com/errandhq/errand/internal/redisconn"
	"github.com/errandhq/errand/internal/store"
	"github.com/errandhq/errand/jobs"
	"github.com/redis/go-redis/v9"
)

// flags is a command's flag set with the shared --config flag.
type flags struct {
	*flag.FlagSet
	config *string
	stderr io.Writer
	// set maps flags the user gave to the config keys they override.
	keys map[string]string
}

func newFlags(name, synopsis string, stderr io.Writer) *flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := &flags{FlagSet: fs, stderr: stderr, keys: map[string]string{}}
	f.config = fs.String("config", "./config.toml", "path of the config file")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: errand %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return f
}

// overrides binds a flag to the config key it overrides when given.
func (f *flags) overrides(flagName, key string) { f.keys[flagName] = key }

// parse parses args, allowing flags after positional arguments
// (errand enqueue TYPE --payload …), and returns the positional ones.
func (f *flags) parse(args []string) ([]string, error) {
	var pos []string
	for {
		if err := f.Parse(args); err != nil {
			return nil, usageError{err}
		}
		args = f.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// load reads the configuration: defaults < file < environment < flags.
func (f *flags) load(environ []string) (*config.Config, error) {
	explicit := false
	f.Visit(func(fl *flag.Flag) {
		if fl.Name == "config" {
			explicit = true
		}
	})
	over := map[string]any{}
	f.Visit(func(fl *flag.Flag) {
		if key, ok := f.keys[fl.Name]; ok {
			over[key] = fl.Value.String()
		}
	})
	return config.Load(*f.config, explicit, environ, over)
}

// quietRedis keeps go-redis's own connection-pool chatter out of errand's
// output; errand reports Redis errors itself, once, in its own words.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

func init() { redis.SetLogger(quietRedis{}) }

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// app is what most commands share.
type app struct {
	cfg *config.Config
	log *slog.Logger
	rdb redis.UniversalClient
	// reg holds every job type of jobs.All, with the configuration applied;
	// only the worker gives them handlers (see handle).
	reg  *job.Registry
	st   store.Store // open only where handlers run
	gate *limit.Gate // [limits], where handlers run
	// stopHistory flushes the worker's history writer (startHistory).
	stopHistory func()
}

// newApp connects to Redis and registers the job types, without handlers:
// enough to queue and inspect jobs, so `errand serve` and the CLI need none
// of the services' settings.
func newApp(cfg *config.Config, stderr io.Writer) (*app, error) {
	log := newLogger(cfg, stderr)
	reg := job.NewRegistry(cfg)
	jobs.Register(reg)
	if err := reg.Configure(cfg.Jobs); err != nil {
		return nil, err
	}
	rdb := redisconn.New(cfg.Redis)
	return &app{cfg: cfg, log: log, rdb: rdb, reg: reg}, nil
}

// handle builds, once, the handler of every job type with what they share
// (the mailer, the database) and the clients of the services they call.
// A type on one of the queues this worker takes must build: a service
// misconfigured for it stops the worker here, in one line naming the type,
// its queue and the keys, instead of failing each of its jobs.
func (a *app) handle(ctx context.Context, takes func(queue string) bool) error {
	m, err := mail.New(a.cfg.SMTP)
	if err != nil {
		return err
	}
	// Handlers read orders and mark shipments synced.
	if a.st, err = store.Open(a.cfg.Database.URL); err != nil {
		return err
	}
	if _, err := a.st.Migrate(ctx); err != nil {
		return err
	}
	// One gate for the worker: every service's calls, emails included, wait
	// for [limits] and for a hold after throttling, across every worker.
	if a.gate, err = limit.New(a.rdb, a.cfg.Limits); err != nil {
		return err
	}
	m.WithGate(a.gate)
	deps := jobs.Deps{Config: a.cfg, Log: a.log, Mailer: m, Store: a.st, Registry: a.reg, Redis: a.rdb, Gate: a.gate}
	if err := jobs.Handle(a.reg, deps, takes); err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	return nil
}

func (a *app) close() {
	if a.stopHistory != nil {
		a.stopHistory()
	}
	a.gate.Close()
	_ = a.rdb.Close()
	if a.st != nil {
		_ = a.st.Close()
	}
}

// pingRedis fails with a clear message when Redis cannot be reached, or
// answers but turns errand away (a *redisRefusedError).
func (a *app) pingRedis(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := a.rdb.Ping(ctx).Err(); err != nil {
		if check := refusalSettings(err); check != "" && a.cfg.Redis.Mode != config.RedisSentinel {
			return &redisRefusedError{addr: a.cfg.Redis.Where(), why: redactErr(err), check: check}
		}
		return unreachable(ctx, a.cfg.Redis, err)
	}
	return nil
}

// redisRefusedError is a Redis that answered but refused errand's login or
// certificate. Unlike a Redis that is down, waiting does not help: serve and
// worker stop with it instead of retrying.
type redisRefusedError struct{ addr, why, check string }

func (e *redisRefusedError) Error() string {
	return fmt.Sprintf("Redis at %s refused errand (%s): check %s", e.addr, e.why, e.check)
}

// refusalSettings names the settings to check when err is Redis (or its TLS
// layer) turning errand away, or returns "".
func refusalSettings(err error) string {
	msg := err.Error()
	var unknownCA x509.UnknownAuthorityError
	var verify *tls.CertificateVerificationError
	switch {
	case strings.HasPrefix(msg, "WRONGPASS"), strings.HasPrefix(msg, "NOAUTH"):
		return "redis.username and redis.password"
	case strings.HasPrefix(msg, "NOPERM"):
		return "the permissions of the ACL user redis.username"
	case strings.Contains(msg, "tls: certificate required"), strings.Contains(msg, "tls: bad certificate"),
		strings.Contains(msg, "tls: unknown certificate authority"), strings.Contains(msg, "tls: certificate unknown"):
		// The server's alert about errand's own (missing or untrusted) certificate.
		return "redis.tls_cert_file and redis.tls_key_file (Redis asks for a client certificate its CA signed)"
	case errors.As(err, &verify), errors.As(err, &unknownCA):
		return "redis.tls_ca_file (errand does not trust Redis's certificate)"
	}
	return ""
}

func redactErr(err error) string {
	return strings.TrimSpace(err.Error())
}

// open loads the configuration and builds the app on it (the caller closes
// it).
func (f *flags) open(environ []string) (*app, error) {
	cfg, err := f.load(environ)
	if err != nil {
		return nil, err
	}
	return newApp(cfg, f.stderr)
}

// connect opens the app and connects to Redis, for the commands that only
// inspect or queue (queues, failed).
func (f *flags) connect(ctx context.Context, environ []string) (*app, error) {
	a, err := f.open(environ)
	if err != nil {
		return nil, err
	}
	if err := a.pingRedis(ctx); err != nil {
		a.close()
		return nil, err
	}
	return a, nil
}
