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
	"github.com/errandhq/errand/internal/mail"
	"github.com/errandhq/errand/internal/queue"
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
	rdb *redis.Client
	reg *job.Registry
	st  *store.Store // open only where handlers run
}

// newApp connects to Redis and registers the job types, with their handlers
// when withHandlers.
func newApp(cfg *config.Config, stderr io.Writer, withHandlers bool) (*app, error) {
	log := newLogger(cfg, stderr)
	reg := job.NewRegistry(cfg)
	deps := jobs.Deps{Config: cfg, Log: log}
	rdb := redis.NewClient(queue.RedisOptions(cfg.Redis))
	deps.Registry, deps.Redis = reg, rdb
	var st *store.Store
	if withHandlers {
		m, err := mail.New(cfg.SMTP)
		if err != nil {
			return nil, err
		}
		deps.Mailer = m
		// Handlers read orders and mark shipments synced.
		if st, err = store.Open(cfg.Database.URL); err != nil {
			return nil, err
		}
		if _, err := st.Migrate(context.Background()); err != nil {
			st.Close()
			return nil, err
		}
		deps.Store = st
	}
	jobs.Register(reg, deps)
	if err := reg.Configure(cfg.Jobs); err != nil {
		return nil, err
	}
	return &app{cfg: cfg, log: log, rdb: rdb, reg: reg, st: st}, nil
}

func (a *app) close() {
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
		if check := refusalSettings(err); check != "" {
			return &redisRefusedError{addr: a.cfg.Redis.Addr, why: redactErr(err), check: check}
		}
		return fmt.Errorf("cannot reach Redis at %s: %v", a.cfg.Redis.Addr, redactErr(err))
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

// connect loads the configuration and connects to Redis, for the commands
// that only inspect or queue (queues, failed).
func (f *flags) connect(ctx context.Context, environ []string) (*app, error) {
	cfg, err := f.load(environ)
	if err != nil {
		return nil, err
	}
	a, err := newApp(cfg, f.stderr, false)
	if err != nil {
		return nil, err
	}
	if err := a.pingRedis(ctx); err != nil {
		a.close()
		return nil, err
	}
	return a, nil
}
