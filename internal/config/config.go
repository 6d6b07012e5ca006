// Package config loads errand's settings: built-in defaults, then config.toml,
// then ERRAND_<SECTION>__<KEY> environment variables, then command-line flags,
// each overriding the one before.
package config

import (
	"errors"
	"fmt"
	netmail "net/mail"
	"os"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/errandhq/errand/internal/fulfillment"
	"github.com/errandhq/errand/internal/mail"
	"github.com/errandhq/errand/internal/shopify"
	"github.com/errandhq/errand/internal/tidio"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/v2"
)

// Config is every setting errand has. config.toml documents each key.
type Config struct {
	Redis      Redis          `koanf:"redis"`
	HTTP       HTTP           `koanf:"http"`
	Database   Database       `koanf:"database"`
	Worker     Worker         `koanf:"worker"`
	Queues     map[string]int `koanf:"queues"` // name → weight; a job's queue not listed here has weight 1
	Policy     Policy         `koanf:"policy"`
	Jobs       map[string]Job `koanf:"jobs"`
	Escalation Escalation     `koanf:"escalation"`
	Dashboard  Dashboard      `koanf:"dashboard"`
	API        API            `koanf:"api"`
	Log        Log            `koanf:"log"`
	Reconcile  Reconcile      `koanf:"reconcile"`
	History    History        `koanf:"history"`
	// Events and Schedule decide which jobs an event queues and which run
	// periodically; see events.go.
	Events   map[string]Event `koanf:"events"`
	Schedule []Schedule       `koanf:"schedule"`
	// Limits caps the calls to each outbound service, shared by every
	// worker; see limits.go.
	Limits map[string]Limit `koanf:"limits"`

	// The services errand calls, each configured by a type its own package
	// declares beside its client, with its defaults and its Validate.
	SMTP    mail.Config        `koanf:"smtp"`
	Notify  Notify             `koanf:"notify"` // Slack or Telegram, see notify.go
	CRM     tidio.Config       `koanf:"crm"`
	Fulfill fulfillment.Config `koanf:"fulfillment"`
	Shopify shopify.Config     `koanf:"shopify"`
}

type HTTP struct {
	Addr      string `koanf:"addr"`
	PublicURL string `koanf:"public_url"`
}

type Database struct {
	URL string `koanf:"url"`
	// PollOnly: the relay does not LISTEN for new jobs (PgBouncer in
	// transaction mode cannot carry a LISTEN); it polls every second.
	PollOnly bool `koanf:"poll_only"`
}

type Worker struct {
	Queues          string        `koanf:"queues"`
	Concurrency     int           `koanf:"concurrency"`
	Strict          bool          `koanf:"strict"`
	ShutdownTimeout time.Duration `koanf:"shutdown_timeout"`
	Fetchers        int           `koanf:"fetchers"`
	PollInterval    time.Duration `koanf:"poll_interval"`
	Nice            int           `koanf:"nice"`
}

// Policy holds the failure-policy settings shared by every job type.
type Policy struct {
	ThrottleDeadline time.Duration `koanf:"throttle_deadline"`
	Retention        time.Duration `koanf:"retention"`
}

// Job overrides the defaults a job type declares in jobs/. Zero values mean
// "keep the job's default".
type Job struct {
	Queue       string          `koanf:"queue"` // one not in [queues] is worked with weight 1
	Delay       *time.Duration  `koanf:"delay"`
	MaxAttempts int             `koanf:"max_attempts"`
	Timeout     time.Duration   `koanf:"timeout"`
	Backoff     []time.Duration `koanf:"backoff"`
	// OrderBy names the payload field whose value orders the type's jobs
	// (see job.Defaults.OrderBy); "" turns a type's default order off.
	OrderBy *string `koanf:"order_by"`
}

type Escalation struct {
	To     []string      `koanf:"to"`
	Window time.Duration `koanf:"window"`
	Redact []string      `koanf:"redact"`
}

type Dashboard struct {
	Path     string `koanf:"path"`
	Username string `koanf:"username"`
	Password string `koanf:"password"`
	ReadOnly bool   `koanf:"read_only"`
}

type API struct {
	// Tokens are the bearer tokens of POST /api/jobs, GET /api/jobs/{id} and
	// PATCH /api/users/{id}: each at least MinTokenLength characters.
	Tokens []string `koanf:"tokens"`
	// CallbackSecret signs every callback (X-Errand-Signature), so a receiver
	// knows the call came from errand; callbacks are refused without it.
	CallbackSecret string `koanf:"callback_secret"`
	// AllowPrivateCallbacks lets callbacks reach loopback and private
	// addresses: for development and tests only.
	AllowPrivateCallbacks bool `koanf:"allow_private_callbacks"`
}

// MinTokenLength is the shortest API token or callback secret errand accepts:
// 16 random characters are beyond guessing online.
const MinTokenLength = 16

// Reconcile is the check for shipments whose tracking never reached Shopify;
// a [[schedule]] entry runs it.
type Reconcile struct {
	Age         time.Duration `koanf:"age"`
	MaxRequeues int           `koanf:"max_requeues"`
}

type Log struct {
	Level  string `koanf:"level"`
	Format string `koanf:"format"`
}

// Default is the configuration when neither the file, the environment nor a
// flag sets a key; each service's part is its package's DefaultConfig.
// config.toml repeats every value with its documentation (a test holds the
// two together).
func Default() *Config {
	return &Config{
		Redis:    DefaultRedis(),
		HTTP:     HTTP{Addr: ":8080", PublicURL: "http://localhost:8080"},
		Database: Database{URL: "file:errand.db"},
		Worker: Worker{
			Concurrency:     20,
			ShutdownTimeout: 30 * time.Second,
			PollInterval:    time.Second,
			Nice:            10,
		},
		Queues: map[string]int{
			"critical": 6, "emails": 3, "notifications": 3, "crm": 2,
			"fulfillment": 3, "shopify": 3, "default": 1,
		},
		Policy: Policy{ThrottleDeadline: 24 * time.Hour, Retention: 24 * time.Hour},
		Escalation: Escalation{
			To:     []string{},
			Window: time.Minute,
			Redact: []string{"password", "token", "secret", "access_token", "authorization"},
		},
		Dashboard: Dashboard{Path: "/monitoring/", Username: "admin"},
		API:       API{Tokens: []string{}},
		Log:       Log{Level: "info", Format: "text"},
		History:   DefaultHistory(),
		Reconcile: Reconcile{Age: 15 * time.Minute, MaxRequeues: 3},
		Events:    DefaultEvents(),
		Schedule:  DefaultSchedule(),

		SMTP:    mail.DefaultConfig(),
		Notify:  DefaultNotify(),
		CRM:     tidio.DefaultConfig(),
		Fulfill: fulfillment.DefaultConfig(),
		Shopify: shopify.DefaultConfig(),
	}
}

// EnvPrefix starts every environment override: ERRAND_SMTP__PASSWORD sets
// smtp.password.
const EnvPrefix = "ERRAND_"

// Load reads the settings. path may name a file that does not exist only when
// it is the default path (a missing explicit --config is an error). environ is
// the process environment as KEY=VALUE pairs; flags holds the values of flags
// the user set, keyed by their config key (e.g. "worker.concurrency").
func Load(path string, mustExist bool, environ []string, flags map[string]any) (*Config, error) {
	k := koanf.New(".")
	if err := loadDefaults(k); err != nil {
		return nil, fmt.Errorf("config: defaults: %w", err)
	}
	if path != "" {
		if _, err := os.Stat(path); err == nil {
			if err := loadFile(k, path); err != nil {
				return nil, err
			}
		} else if mustExist || !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	envVals, envNames, err := fromEnv(k, environ)
	if err != nil {
		return nil, err
	}
	if err := k.Load(confmap.Provider(envVals, "."), nil); err != nil {
		return nil, fmt.Errorf("config: environment: %w", err)
	}
	if len(flags) > 0 {
		if err := k.Load(confmap.Provider(flags, "."), nil); err != nil {
			return nil, fmt.Errorf("config: flags: %w", err)
		}
	}
	// The decoder would turn true into 1 and 30 into 30ns without a word.
	if bad := badValues(k, envNames); len(bad) > 0 {
		return nil, fmt.Errorf("config: %s", strings.Join(bad, "; "))
	}
	var c Config
	if err := k.UnmarshalWithConf("", &c, koanf.UnmarshalConf{Tag: "koanf"}); err != nil {
		return nil, fmt.Errorf("config: %w", cleanDecodeError(err))
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// envValue turns a comma-separated environment value into a list where the key
// is a list (escalation.to, api.tokens, jobs.<type>.backoff).
func envValue(k *koanf.Koanf, key, val string) any {
	if _, isList := k.Get(key).([]any); isList || strings.HasSuffix(key, ".backoff") {
		return splitList(val)
	}
	if _, isList := k.Get(key).([]string); isList {
		return splitList(val)
	}
	return val
}

func splitList(s string) []string {
	out := []string{}
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Validate checks the settings that would otherwise fail later, far from
// their cause. Of the services, only [smtp] (every worker sends escalation
// emails) and notify.kind are checked here: errand starts without a CRM, a
// fulfillment platform or a shop, and each service's own Validate says what
// it lacks once a job needs it.
func (c *Config) Validate() error {
	var errs []string
	bad := func(key, format string, args ...any) {
		errs = append(errs, key+": "+fmt.Sprintf(format, args...))
	}
	errs = append(errs, c.Redis.validate()...)
	errs = append(errs, c.History.validate()...)
	if c.Worker.Concurrency < 1 {
		bad("worker.concurrency", "must be at least 1 (got %d)", c.Worker.Concurrency)
	}
	if c.Worker.Fetchers < 0 {
		bad("worker.fetchers", "must not be negative (got %d)", c.Worker.Fetchers)
	}
	if c.Worker.Nice < 0 || c.Worker.Nice > 19 {
		bad("worker.nice", "must be 0 (leave as is) to 19 (got %d)", c.Worker.Nice)
	}
	if c.Worker.PollInterval < time.Millisecond {
		bad("worker.poll_interval", "must be at least 1ms (got %s)", c.Worker.PollInterval)
	}
	if c.Worker.ShutdownTimeout <= 0 {
		bad("worker.shutdown_timeout", "must be positive (got %s)", c.Worker.ShutdownTimeout)
	}
	if len(c.Queues) == 0 {
		bad("queues", "at least one queue must be configured")
	}
	for name, w := range c.Queues {
		if w < 1 {
			bad("queues."+name, "weight must be at least 1 (got %d)", w)
		}
	}
	if err := c.SMTP.Validate(); err != nil {
		errs = append(errs, err.Error())
	}
	for _, to := range c.Escalation.To {
		if _, err := netmail.ParseAddress(to); err != nil {
			bad("escalation.to", "%q is not an email address", to)
		}
	}
	if c.Escalation.Window < time.Second {
		bad("escalation.window", "must be at least 1s (got %s)", c.Escalation.Window)
	}
	if c.Policy.ThrottleDeadline <= 0 {
		bad("policy.throttle_deadline", "must be positive (got %s)", c.Policy.ThrottleDeadline)
	}
	if c.Policy.Retention < 0 {
		bad("policy.retention", "must not be negative (got %s)", c.Policy.Retention)
	}
	if err := c.Notify.checkKind(); err != nil {
		errs = append(errs, err.Error())
	}
	c.validateLimits(bad)
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error (got %q)", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "must be text or json (got %q)", c.Log.Format)
	}
	c.validateEvents(bad)
	if c.Reconcile.Age <= 0 {
		bad("reconcile.age", "must be positive (got %s)", c.Reconcile.Age)
	}
	if c.Reconcile.MaxRequeues < 0 {
		bad("reconcile.max_requeues", "must not be negative (got %d)", c.Reconcile.MaxRequeues)
	}
	for i, tok := range c.API.Tokens {
		// Never the token itself: this line reaches logs and terminals.
		switch n := utf8.RuneCountInString(tok); {
		case n < MinTokenLength:
			bad("api.tokens", "token %d of %d is %d characters; each must be at least %d (make one with: openssl rand -hex 24)", i+1, len(c.API.Tokens), n, MinTokenLength)
		case strings.TrimSpace(tok) != tok:
			bad("api.tokens", "token %d of %d starts or ends with white space", i+1, len(c.API.Tokens))
		}
	}
	if s := c.API.CallbackSecret; s != "" && utf8.RuneCountInString(s) < MinTokenLength {
		bad("api.callback_secret", "must be at least %d characters (make one with: openssl rand -hex 24)", MinTokenLength)
	}
	if !strings.HasPrefix(c.Dashboard.Path, "/") {
		bad("dashboard.path", "must start with / (got %q)", c.Dashboard.Path)
	}
	names := make([]string, 0, len(c.Jobs))
	for name := range c.Jobs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		j := c.Jobs[name]
		key := fmt.Sprintf("jobs.%q", name)
		if j.MaxAttempts < 0 {
			bad(key+".max_attempts", "must be at least 1 (got %d)", j.MaxAttempts)
		}
		if j.Delay != nil && *j.Delay < 0 {
			bad(key+".delay", "must not be negative (got %s)", *j.Delay)
		}
		if j.Timeout < 0 {
			bad(key+".timeout", "must not be negative (got %s)", j.Timeout)
		}
		for _, b := range j.Backoff {
			if b < 0 {
				bad(key+".backoff", "must not hold negative waits (got %s)", b)
			}
		}
	}
	if len(errs) > 0 {
		sort.Strings(errs)
		return fmt.Errorf("config: %s", strings.Join(errs, "; "))
	}
	return nil
}
