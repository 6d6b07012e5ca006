package config

import (
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/mail"
	"github.com/errandhq/errand/internal/shopify"
	"github.com/errandhq/errand/internal/tidio"
	"github.com/knadh/koanf/parsers/toml/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// The shipped config.toml must load as it is and match the built-in defaults.
func TestShippedConfigLoads(t *testing.T) {
	c, err := Load("../../config.toml", true, nil, nil)
	if err != nil {
		t.Fatalf("config.toml: %v", err)
	}
	if c.Worker.ShutdownTimeout != 30*time.Second || c.Escalation.Window != time.Minute || c.HTTP.Addr != ":8080" {
		t.Fatalf("config.toml disagrees with the defaults: %+v", c)
	}
	// A job type's defaults are written once, beside its code in jobs/:
	// config.toml only shows how to override them, in comments.
	if len(c.Jobs) != 0 {
		t.Fatalf("config.toml sets [jobs] tables %v; the job types declare their defaults in jobs/", c.Jobs)
	}
}

// A job's queue need not be listed in [queues] (it is worked with weight 1),
// so moving a job to a queue of its own is one line.
func TestJobOnAQueueNotInQueuesLoads(t *testing.T) {
	c, err := Load(writeFile(t, "[jobs.\"user:welcome_email\"]\nqueue = \"greetings\"\n"), true, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Jobs["user:welcome_email"].Queue; got != "greetings" {
		t.Fatalf("jobs.user:welcome_email.queue = %q", got)
	}
}

func TestPrecedenceFileEnvFlag(t *testing.T) {
	path := writeFile(t, `
[worker]
concurrency = 7
shutdown_timeout = "12s"
[smtp]
host = "mail.file.test"
port = 2525
[escalation]
to = ["file@shop.test"]
`)
	// File only.
	c, err := Load(path, true, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Worker.Concurrency != 7 || c.SMTP.Host != "mail.file.test" || c.SMTP.Port != 2525 || c.Worker.ShutdownTimeout != 12*time.Second {
		t.Fatalf("file values not applied: %+v %+v", c.Worker, c.SMTP)
	}
	if c.Redis.Addr != "127.0.0.1:6379" {
		t.Fatalf("default lost: redis.addr = %q", c.Redis.Addr)
	}
	// Environment beats the file.
	env := []string{
		"ERRAND_WORKER__CONCURRENCY=9",
		"ERRAND_SMTP__HOST=mail.env.test",
		"ERRAND_SMTP__PASSWORD=s3cret",
		"ERRAND_ESCALATION__TO=a@shop.test, b@shop.test",
		"ERRAND_WORKER__SHUTDOWN_TIMEOUT=3s",
		"UNRELATED=1",
	}
	c, err = Load(path, true, env, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Worker.Concurrency != 9 || c.SMTP.Host != "mail.env.test" || c.SMTP.Password != "s3cret" || c.Worker.ShutdownTimeout != 3*time.Second {
		t.Fatalf("env not applied over file: %+v %+v", c.Worker, c.SMTP)
	}
	if strings.Join(c.Escalation.To, "|") != "a@shop.test|b@shop.test" {
		t.Fatalf("env list: %q", c.Escalation.To)
	}
	if c.SMTP.Port != 2525 {
		t.Fatalf("file value lost under env: port %d", c.SMTP.Port)
	}
	// A flag beats the environment.
	c, err = Load(path, true, env, map[string]any{"worker.concurrency": "11"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Worker.Concurrency != 11 {
		t.Fatalf("flag not applied over env: %d", c.Worker.Concurrency)
	}
}

func TestInvalidValuesAreClear(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		env        []string
		want       string
	}{
		{"bad tls", "[smtp]\ntls = \"ssl\"\n", nil, `smtp.tls: must be one of none, starttls, tls (got "ssl")`},
		{"bad duration", "[worker]\nshutdown_timeout = \"soon\"\n", nil, "shutdown_timeout"},
		{"bad env int", "", []string{"ERRAND_WORKER__CONCURRENCY=many"}, "concurrency"},
		{"zero concurrency", "[worker]\nconcurrency = 0\n", nil, "worker.concurrency: must be at least 1"},
		{"bad escalation address", "[escalation]\nto = [\"not an address\"]\n", nil, `escalation.to: "not an address" is not an email address`},
		{"zero queue weight", "[queues]\nemails = 0\n", nil, "queues.emails: weight must be at least 1 (got 0)"},
		{"broken toml", "[smtp\nhost=1", nil, "config.toml"},
		{"unknown redis mode", "[redis]\nmode = \"ring\"\n", nil, `redis.mode: must be standalone, sentinel or cluster (got "ring")`},
		{"sentinel without master", "", []string{"ERRAND_REDIS__MODE=sentinel", "ERRAND_REDIS__ADDRS=a:26379"}, "redis.master_name: must name the master"},
		{"sentinel without sentinels", "[redis]\nmode = \"sentinel\"\nmaster_name = \"errand\"\n", nil, "redis.addrs: must list the sentinels"},
		{"cluster without seeds", "[redis]\nmode = \"cluster\"\n", nil, "redis.addrs: must list at least one node"},
		{"cluster db", "[redis]\nmode = \"cluster\"\naddrs = [\"a:7000\"]\ndb = 2\n", nil, "redis.db: must be 0 in cluster mode"},
		{"addrs in standalone", "", []string{"ERRAND_REDIS__ADDRS=a:26379"}, "redis.addrs: is set but redis.mode is standalone"},
		{"addr without port", "[redis]\nmode = \"cluster\"\naddrs = [\"a\"]\n", nil, `redis.addrs: "a" is not host:port`},
		{"negative replica wait", "[redis]\nreplica_wait = \"-1s\"\n", nil, "redis.replica_wait: must be 0 (off) to 2s (got -1s)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(writeFile(t, tc.file), true, tc.env, nil)
			if err == nil {
				t.Fatal("want an error, got none")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
			if strings.Count(err.Error(), "\n") > 0 {
				t.Fatalf("error is not one line: %q", err)
			}
		})
	}
}

func TestMissingFile(t *testing.T) {
	// The default path may be absent: defaults apply.
	if _, err := Load(filepath.Join(t.TempDir(), "config.toml"), false, nil, nil); err != nil {
		t.Fatalf("missing default config: %v", err)
	}
	// An explicit --config that does not exist is an error.
	_, err := Load(filepath.Join(t.TempDir(), "nope.toml"), true, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "nope.toml") {
		t.Fatalf("want an error naming the file, got %v", err)
	}
}

// An empty or short API token would open the API to guessing: every command
// refuses to start, with one line naming api.tokens and never the token.
func TestShortOrEmptyAPITokenRefusesToStart(t *testing.T) {
	for name, body := range map[string]string{
		"empty":      `tokens = [""]`,
		"short":      `tokens = ["0123456789abcdef", "short-secret"]`,
		"whitespace": `tokens = [" 0123456789abcdef "]`,
	} {
		_, err := Load(writeFile(t, "[api]\n"+body+"\n"), true, nil, nil)
		if err == nil || !strings.Contains(err.Error(), "api.tokens") || strings.Contains(err.Error(), "short-secret") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s token: %v; want one line naming api.tokens, without the token", name, err)
		}
	}
	if _, err := Load(writeFile(t, "[api]\ntokens = [\"0123456789abcdef\"]\n"), true, nil, nil); err != nil {
		t.Errorf("a 16-character token: %v", err)
	}
	if _, err := Load(writeFile(t, "[api]\ncallback_secret = \"short\"\n"), true, nil, nil); err == nil || !strings.Contains(err.Error(), "api.callback_secret") {
		t.Errorf("short callback secret: %v", err)
	}
	if _, err := Load(writeFile(t, "[redis]\ntls = true\ntls_cert_file = \"/x.pem\"\n"), true, nil, nil); err == nil || !strings.Contains(err.Error(), "tls_key_file") {
		t.Errorf("a client certificate without its key: %v", err)
	}
}

// config.toml documents every key errand reads, each with its default:
// the keys it sets are exactly the keys of Default(), with the same values.
// A key a service adds to its Config without a line in config.toml, or a line
// for a key nothing reads, fails here. config.toml sets no [jobs."<type>"]
// table (TestShippedConfigLoads): the job types declare their defaults in jobs/.
func TestShippedConfigIsTheDefaults(t *testing.T) {
	k := koanf.New(".")
	if err := k.Load(file.Provider("../../config.toml"), toml.Parser()); err != nil {
		t.Fatal(err)
	}
	defaults := Default().Keys()
	for _, key := range k.Keys() {
		if _, ok := defaults[key]; !ok && !strings.HasPrefix(key, "jobs.") {
			t.Errorf("config.toml sets %s, which is not a setting with a default", key)
		}
	}
	var shipped Config
	if err := k.UnmarshalWithConf("", &shipped, koanf.UnmarshalConf{Tag: "koanf"}); err != nil {
		t.Fatal(err)
	}
	got := shipped.Keys()
	keys := slices.Sorted(maps.Keys(defaults))
	for _, key := range keys {
		switch {
		case !k.Exists(key):
			t.Errorf("config.toml does not document %s (default %v)", key, defaults[key])
		case !reflect.DeepEqual(got[key], defaults[key]):
			t.Errorf("%s: config.toml says %#v, the default is %#v", key, got[key], defaults[key])
		}
	}
	if len(keys) < 60 {
		t.Fatalf("only %d default keys: Keys() is not reading the whole Config", len(keys))
	}
}

// Every service's Validate says what is wrong in one line, naming keys that
// exist. The defaults of the services errand can run without (CRM,
// fulfillment, Shopify, notifications) do not pass; [smtp]'s does.
func TestServiceConfigsNameTheirKeys(t *testing.T) {
	known := Default().Keys()
	withRep := &Config{Notify: Notify{Reps: map[string]Rep{"alice": {}}}}
	for key, v := range withRep.Keys() {
		known[key] = v
	}
	keyPattern := regexp.MustCompile(`[a-z_]+(\.[a-z_]+)+`)
	quoted := regexp.MustCompile(`"[^"]*"`)
	def := Default()
	if err := def.SMTP.Validate(); err != nil {
		t.Errorf("the default [smtp] does not pass: %v", err)
	}
	for name, err := range map[string]error{
		"smtp":               mail.Config{TLS: "ssl", From: "nobody"}.Validate(),
		"notify":             def.Notify.Validate(),
		"notify (telegram)":  Notify{Kind: "telegram", DefaultRep: "bob", Reps: map[string]Rep{"alice": {}}}.Validate(),
		"notify (slack)":     Notify{Kind: "slack", BaseURL: "sandbox", Reps: map[string]Rep{"alice": {SlackWebhookURL: "hooks.slack.com/x"}}}.Validate(),
		"crm":                def.CRM.Validate(),
		"crm (bad base_url)": tidio.Config{BaseURL: "api.tidio.com", ClientID: "id", ClientSecret: "s"}.Validate(),
		"fulfillment":        def.Fulfill.Validate(),
		"shopify":            def.Shopify.Validate(),
		"shopify (no shop)":  shopify.Config{}.Validate(),
	} {
		if err == nil {
			t.Errorf("%s: passes", name)
			continue
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: not one line: %q", name, err)
		}
		// Quoted text is the value given, not a key.
		named := keyPattern.FindAllString(quoted.ReplaceAllString(err.Error(), ""), -1)
		if len(named) == 0 {
			t.Errorf("%s: names no key: %q", name, err)
		}
		for _, key := range named {
			if _, ok := known[key]; !ok && key != "notify.reps" {
				t.Errorf("%s: names %s, which is not a setting: %q", name, key, err)
			}
		}
	}
}

// A list key set from the environment is comma-separated, whichever list it
// is: the defaults tell Load which keys are lists.
func TestEnvironmentListsAreSplit(t *testing.T) {
	c, err := Load("", false, []string{
		"ERRAND_API__TOKENS=0123456789abcdef, fedcba9876543210",
		"ERRAND_ESCALATION__TO=a@shop.test,b@shop.test",
		"ERRAND_ESCALATION__REDACT=pin,iban",
		`ERRAND_JOBS__USER:WELCOME_EMAIL__BACKOFF=1s,2s`,
		"ERRAND_NOTIFY__REPS__ALICE__SLACK_WEBHOOK_URL=https://hooks.slack.com/services/T/B/a,b",
		"ERRAND_REDIS__MODE=sentinel", "ERRAND_REDIS__MASTER_NAME=errand",
		"ERRAND_REDIS__ADDRS=a:26379, b:26379,c:26379",
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.API.Tokens, "|"); got != "0123456789abcdef|fedcba9876543210" {
		t.Errorf("api.tokens = %q", got)
	}
	if got := strings.Join(c.Escalation.To, "|"); got != "a@shop.test|b@shop.test" {
		t.Errorf("escalation.to = %q", got)
	}
	if got := strings.Join(c.Escalation.Redact, "|"); got != "pin|iban" {
		t.Errorf("escalation.redact = %q", got)
	}
	if got := c.Jobs["user:welcome_email"].Backoff; len(got) != 2 || got[0] != time.Second || got[1] != 2*time.Second {
		t.Errorf("jobs.user:welcome_email.backoff = %v", got)
	}
	if got := strings.Join(c.Redis.Addrs, "|"); got != "a:26379|b:26379|c:26379" {
		t.Errorf("redis.addrs = %q", got)
	}
	// Not a list: a comma stays.
	if got := c.Notify.Reps["alice"].SlackWebhookURL; got != "https://hooks.slack.com/services/T/B/a,b" {
		t.Errorf("notify.reps.alice.slack_webhook_url = %q", got)
	}
}

// [limits]: a rate becomes a token bucket; environment variables set it; a
// malformed rate or an unknown service stops errand with the key named.
func TestLimits(t *testing.T) {
	c, err := Load(writeFile(t, "[limits.tidio]\nrate = \"120/1m\"\nburst = 5\n"), true,
		[]string{"ERRAND_LIMITS__SLACK__RATE=5/1s"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if per, burst, err := c.Limits["tidio"].Bucket(); err != nil || per != 500*time.Millisecond || burst != 5 {
		t.Fatalf("tidio: per %v burst %d err %v", per, burst, err)
	}
	if per, burst, err := c.Limits["slack"].Bucket(); err != nil || per != 200*time.Millisecond || burst != 1 {
		t.Fatalf("slack from the environment: per %v burst %d err %v", per, burst, err)
	}
	if per, _, err := c.Limits["smtp"].Bucket(); err != nil || per != 0 {
		t.Fatalf("no table is no limit: per %v err %v", per, err)
	}
	for body, want := range map[string]string{
		"[limits.slack]\nrate = \"ten\"\n":  "limits.slack.rate: ",
		"[limits.slack]\nrate = \"5/0s\"\n": "limits.slack.rate: ",
		"[limits.slack]\nrate = \"0/1s\"\n": "limits.slack.rate: ",
		"[limits.slack]\nrate = \"5\"\n":    "limits.slack.rate: ",
		"[limits.slakc]\nrate = \"5/1s\"\n": "limits.slakc: unknown service",
		"[limits.tidio]\nburst = -1\n":      "limits.tidio.burst: ",
	} {
		_, err := Load(writeFile(t, body), true, nil, nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error containing %q", body, err, want)
		}
	}
}
