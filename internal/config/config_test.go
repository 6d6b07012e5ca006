package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
	if got := c.Jobs["user:welcome_email"].Backoff; len(got) != 2 || got[0] != 10*time.Second || got[1] != time.Minute {
		t.Fatalf("jobs.user:welcome_email.backoff = %v", got)
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
		{"job on unknown queue", "[jobs.\"user:welcome_email\"]\nqueue = \"nowhere\"\n", nil, `queue "nowhere" is not in [queues]`},
		{"broken toml", "[smtp\nhost=1", nil, "config.toml"},
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
