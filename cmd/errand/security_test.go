package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/redistest"
)

// A known password and every configured secret must reach no queue, no log
// line, no email, no metrics label and no third party. Redis here requires a
// password, which errand must use.
func TestSecretsNeverLeak(t *testing.T) {
	t.Parallel()
	const password = "Tr0ub4dor&3-never-leak"
	s := startStack(t, stackOptions{redis: []redistest.Option{redistest.Password("redis-pass-never-leak")}, toml: apiTOML + welcomeAtOnce})
	// A signed callback, so what a callback carries is scanned too.
	callbacks := startReceiver(t, nil)
	if code, out, _ := s.api("POST", "/api/jobs", firstToken, `{"type":"ops:noop","payload":{},"callback_url":"`+callbacks.URL+`"}`); code != http.StatusAccepted {
		t.Fatalf("enqueue with a callback: %d %v", code, out)
	}
	code, body := s.post("/api/users", map[string]any{"email": "ada@shop.test", "first_name": "Ada", "last_name": "L", "password": password}, nil)
	if code != http.StatusCreated {
		t.Fatalf("register: %d %v", code, body)
	}
	s.smtp.WaitFor(t, 1, 15*time.Second)
	s.waitFor(15*time.Second, "the CRM contact and the rep's message", func() bool {
		return len(s.sandbox.Tidio.Contacts()) == 1 && len(s.sandbox.Slack.Messages()) == 1
	})
	// A failure, so an escalation email exists too.
	s.smtp.RejectRecipients("@bounce.test", 550, "no")
	s.post("/api/users", map[string]any{"email": "gone@bounce.test", "first_name": "G", "last_name": "L", "password": password}, nil)
	s.waitFor(20*time.Second, "the escalation", func() bool { return len(s.escalations()) == 1 })
	s.waitFor(20*time.Second, "the callback", func() bool { return strings.Contains(callbacks.text(), "X-Errand-Signature") })

	secrets := append([]string{password, "redis-pass-never-leak", testCallbackSecret}, testSecrets()...)
	var places []struct{ name, text string }
	add := func(name, text string) { places = append(places, struct{ name, text string }{name, text}) }
	keys := s.redisText()
	if len(keys) == 0 {
		t.Fatal("Redis is empty")
	}
	for k, text := range keys {
		add("redis key "+k, text)
	}
	add("callback", callbacks.text())
	add("serve log", s.serve.String())
	add("worker log", s.worker.String())
	for _, m := range s.smtp.Messages() {
		add("email to "+strings.Join(m.To, ","), string(m.Raw))
	}
	_, metrics := s.get("/metrics")
	add("/metrics", metrics)
	for _, c := range s.sandbox.Calls("") {
		add("call to "+c.Service, c.Request)
	}
	for _, p := range places {
		for _, secret := range secrets {
			if strings.Contains(p.text, secret) {
				t.Errorf("%q found in %s", secret, p.name)
			}
		}
	}
	t.Logf("scanned %d places (%d Redis keys, logs, %d emails, /metrics, %d third-party calls) for %d secrets",
		len(places), len(keys), len(s.smtp.Messages()), len(s.sandbox.Calls("")), len(secrets))
}

// Redis over TLS, with a password: errand verifies the server's certificate
// against redis.tls_ca_file and every part (serve, relay, worker, the CLI)
// works through it.
func TestRedisOverTLS(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{redis: []redistest.Option{redistest.TLS(), redistest.Password("tls-redis-pass")}, toml: welcomeAtOnce})
	if code, _ := s.post("/api/users", registration("ada@shop.test"), nil); code != http.StatusCreated {
		t.Fatalf("register: %d", code)
	}
	s.smtp.WaitFor(t, 1, 15*time.Second)
	if out, err := s.cli("queues"); err != nil || !strings.Contains(out, "emails") {
		t.Fatalf("errand queues over TLS: %v %s", err, out)
	}
	if code, _ := s.get("/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz over TLS: %d", code)
	}
	// Without the CA the server's certificate is refused, with one clear line.
	err := run(t.Context(), []string{"queues", "--config", s.config}, []string{"ERRAND_REDIS__TLS_CA_FILE="}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without the CA: %v", err)
	}
	t.Logf("without the CA: %v", err)
}
