package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/redistest"
	"github.com/hibiken/asynq"
)

// A caller sends JSON that is not an object — `null` made the user handlers
// panic on a nil request — to every endpoint that reads a body, correctly
// signed or authorised where it has to be. Each answers 400/422 with a JSON
// error, and nothing is stored.
func TestJSONThatIsNotAnObjectGetsAnAnswer(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{noWorker: true, toml: apiTOML})
	if code, out := s.post("/api/users", registration("ada@shop.test"), nil); code != http.StatusCreated {
		t.Fatalf("register: %d %v", code, out)
	}
	bearer := http.Header{"Authorization": {"Bearer " + firstToken}}
	now := strconv.FormatInt(time.Now().Unix(), 10)
	for _, body := range []string{`null`, `[]`, `"x"`, `123`} {
		b := []byte(body)
		for _, r := range []struct {
			name, method, path string
			header             http.Header
		}{
			{"register", "POST", "/api/users", nil},
			{"profile change", "PATCH", "/api/users/1", bearer},
			{"enqueue", "POST", "/api/jobs", bearer},
			{"orders/paid", "POST", "/webhooks/shopify/orders-paid", http.Header{
				"X-Shopify-Hmac-Sha256": {shopifySign(s.services.Shopify.WebhookSecret, b)}, "X-Shopify-Topic": {"orders/paid"}}},
			{"tracking", "POST", "/webhooks/fulfillment/tracking", http.Header{
				"X-Timestamp": {now}, "X-Signature": {callbackSign(s.services.Fulfill.CallbackSecret, now, b)}}},
		} {
			answer, err := s.send(r.method, r.path, b, r.header)
			if err != nil {
				t.Errorf("%s %s: no answer (did the handler panic?): %v", r.name, body, err)
				continue
			}
			if out := answer.json(); answer.status != http.StatusBadRequest && answer.status != http.StatusUnprocessableEntity || out["error"] == nil {
				t.Errorf("%s %s: %d %q, want a 400 or 422 JSON error", r.name, body, answer.status, answer.body)
			}
		}
	}
	st := s.db()
	if n, err := st.CountUsers(context.Background()); err != nil || n != 1 {
		t.Fatalf("users: %d, %v; want only the one registered", n, err)
	}
	if u, err := st.GetUser(context.Background(), 1); err != nil || u.Email != "ada@shop.test" {
		t.Fatalf("user 1 changed: %+v, %v", u, err)
	}
}

// With Redis down, /readyz says so without showing where Redis is (an
// internal address and port is a map of the network); the log has the error.
func TestReadyzShowsNoAddress(t *testing.T) {
	s := startStack(t, stackOptions{noWorker: true})
	s.redis.Stop()
	defer s.redis.Restart()
	code, body := s.get("/readyz")
	var out map[string]string
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("/readyz: %d %q", code, body)
	}
	if code != http.StatusServiceUnavailable || out["redis"] != "unreachable" || out["database"] != "ok" || len(out) != 2 {
		t.Fatalf("/readyz with Redis down: %d %s", code, body)
	}
	_, port, _ := net.SplitHostPort(s.redis.Addr())
	for _, leak := range []string{"127.0.0.1", port, "dial", "tcp", "refused"} {
		if strings.Contains(body, leak) {
			t.Errorf("/readyz shows %q: %s", leak, body)
		}
	}
	if len(s.serve.lines("level=WARN", "readyz", s.redis.Addr())) == 0 {
		t.Errorf("the Redis error is not in the log at WARN:\n%s", s.serve.String())
	}
}

// A webhook of another topic, signed with the shop's one secret (refunds,
// new unpaid orders), sent to the orders-paid URL: 400 naming the topic,
// nothing stored, nothing queued. Before, a refund became a paid order.
func TestOrdersPaidWebhookOfAnotherTopicIsRefused(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{noWorker: true})
	secret := s.services.Shopify.WebhookSecret
	const orderID = 820982911946154508
	refund := []byte(`{"id":890088186047892319,"order_id":820982911946154508,"note":"wrong size","refund_line_items":[]}`)
	order := orderPaidBody(orderID)
	for _, tc := range []struct {
		topic string
		body  []byte
	}{
		{"refunds/create", refund},
		{"orders/create", order},
		{"orders/cancelled", order},
		{"", order},
		{"ORDERS/PAID", order},
	} {
		h := http.Header{"X-Shopify-Hmac-Sha256": {shopifySign(secret, tc.body)}, "X-Shopify-Event-Id": {"evt-" + tc.topic}}
		if tc.topic != "" {
			h.Set("X-Shopify-Topic", tc.topic)
		}
		code, out := s.post("/webhooks/shopify/orders-paid", tc.body, h)
		msg, _ := out["error"].(string)
		if code != http.StatusBadRequest || !strings.Contains(msg, "X-Shopify-Topic") || !strings.Contains(msg, "orders/paid") {
			t.Errorf("topic %q: %d %v, want 400 naming X-Shopify-Topic", tc.topic, code, out)
		}
	}
	for _, id := range []int64{orderID, 890088186047892319} {
		if _, err := s.db().GetOrder(context.Background(), id); err == nil {
			t.Fatalf("a webhook of another topic stored order %d", id)
		}
	}
	if n := len(s.queued("fulfillment")); n != 0 {
		t.Fatalf("a webhook of another topic queued %d jobs", n)
	}
	h := http.Header{"X-Shopify-Hmac-Sha256": {shopifySign(secret, order)}, "X-Shopify-Event-Id": {"evt-paid"}, "X-Shopify-Topic": {"orders/paid"}}
	if code, out := s.post("/webhooks/shopify/orders-paid", order, h); code != http.StatusOK || out["status"] != "queued" {
		t.Fatalf("orders/paid: %d %v", code, out)
	}
}

// Text from outside — a job type, a queue name, an error text a third party
// wrote — carrying terminal escapes (retitle the window, clear the screen,
// return to the line start to overwrite it, reorder it with U+202E, CSI as
// one C1 character) reaches the operator's terminal through
// `errand failed list` and `errand queues` as visible escapes only. Here a
// plain asynq server writes them, as anyone with Redis access could.
func TestCLIShowsNoTerminalEscapes(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{noWorker: true})
	const attack = "\x1b]0;pwned\x07\x1b[2J\r\u202e\u009b31m"
	typ, qname, failure := "ops:x"+attack, "q"+attack, "boom"+attack+"\nsecond line"
	opt := asynq.RedisClientOpt{Addr: s.redis.Addr()}
	client := asynq.NewClient(opt)
	defer client.Close()
	if _, err := client.Enqueue(asynq.NewTask(typ, nil), asynq.Queue(qname), asynq.MaxRetry(0)); err != nil {
		t.Fatal(err)
	}
	srv := asynq.NewServer(opt, asynq.Config{Queues: map[string]int{qname: 1}, Concurrency: 1, LogLevel: asynq.FatalLevel})
	if err := srv.Start(asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return errors.New(failure) })); err != nil {
		t.Fatal(err)
	}
	ins := asynq.NewInspector(opt)
	defer ins.Close()
	s.waitFor(20*time.Second, "the job in the archive", func() bool {
		tasks, _ := ins.ListArchivedTasks(qname)
		return len(tasks) == 1
	})
	srv.Shutdown()

	hostile := func(out string) string {
		for _, bad := range []string{"\x1b", "\x07", "\r", "\u202e", "\u009b"} {
			if strings.Contains(out, bad) {
				return strconv.Quote(bad)
			}
		}
		return ""
	}
	for _, args := range [][]string{{"failed", "list"}, {"queues"}, {"failed", "list", "--json"}, {"queues", "--json"}} {
		out, err := s.cli(args...)
		if err != nil {
			t.Fatalf("errand %v: %v: %s", args, err, out)
		}
		if bad := hostile(out); bad != "" {
			t.Errorf("errand %s prints %s raw:\n%q", strings.Join(args, " "), bad, out)
		}
		if !strings.Contains(out, `\x1b]0;pwned\x07`) && !strings.Contains(out, `\u001b]0;pwned\u0007`) {
			t.Errorf("errand %s does not show the escapes visibly:\n%s", strings.Join(args, " "), out)
		}
	}
	// --json still carries the exact text, for programs.
	list := s.failed()
	if len(list) != 1 || list[0]["type"] != typ || list[0]["queue"] != qname || list[0]["error"] != failure {
		t.Fatalf("failed list --json does not decode to the original text: %q", list)
	}
}

// errand logs in to Redis as an ACL user over TLS with a client certificate:
// serve, worker, dashboard and CLI all work. Without the user name (so as
// the default user, which is off) or without the certificate, each command
// stops with one line naming the setting to fix, instead of waiting or
// printing a stack trace.
func TestRedisACLUserAndClientCertificate(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{
		redis:       []redistest.Option{redistest.ACLUser("errand", "errand-acl-pass"), redistest.ClientCerts()},
		dashboardPW: "dash-secret",
		toml:        welcomeAtOnce,
	})
	if code, out := s.post("/api/users", registration("ada@shop.test"), nil); code != http.StatusCreated {
		t.Fatalf("register: %d %v", code, out)
	}
	s.smtp.WaitFor(t, 1, 30*time.Second) // the relay (serve) and the worker both reached Redis
	if out, err := s.cli("queues"); err != nil || !strings.Contains(out, "emails") {
		t.Fatalf("errand queues: %v\n%s", err, out)
	}
	if code, _, body := s.dashboardRequest("GET", "/monitoring/api/queues", "", "admin", "dash-secret"); code != http.StatusOK || !strings.Contains(body, `"emails"`) {
		t.Fatalf("dashboard API over the ACL user: %d %s", code, body)
	}

	for _, tc := range []struct {
		name string
		env  []string // overrides of the working config
		want string
	}{
		{"without redis.username", []string{"ERRAND_REDIS__USERNAME="}, "redis.username"},
		{"without a client certificate", []string{"ERRAND_REDIS__TLS_CERT_FILE=", "ERRAND_REDIS__TLS_KEY_FILE="}, "redis.tls_cert_file"},
	} {
		for _, args := range [][]string{{"queues"}, {"failed", "list"}, {"enqueue", "ops:noop"}, {"worker"}, {"serve", "--addr", freeAddr(t)}} {
			var out bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			err := run(ctx, append([]string{args[0], "--config", s.config}, args[1:]...), tc.env, &out, &out)
			timedOut := ctx.Err() != nil
			cancel()
			if err == nil || timedOut {
				t.Fatalf("%s: errand %s: %v (it should stop at once with an error)\n%s", tc.name, args[0], err, out.String())
			}
			line := "errand: " + err.Error() // what main prints
			if strings.Contains(line, "\n") || !strings.Contains(line, tc.want) || !strings.Contains(line, "refused") {
				t.Errorf("%s: errand %s says %q; want one line naming %s", tc.name, args[0], line, tc.want)
			}
			if strings.Contains(out.String(), "goroutine ") || strings.Contains(out.String(), "panic") {
				t.Errorf("%s: errand %s printed a stack trace:\n%s", tc.name, args[0], out.String())
			}
			t.Logf("%s: errand %s: %s", tc.name, args[0], line)
		}
	}
}

func TestTermSafe(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"user:welcome_email":          "user:welcome_email",
		"héllo ✓ 日本":                  "héllo ✓ 日本",
		"\x1b]0;pwned\x07\x1b[2J\rok": `\x1b]0;pwned\x07\x1b[2J\x0dok`,
		"a\tb\nc\x00\x7f":             `a\x09b\x0ac\x00\x7f`,
		"\u009b31m\u0085":             `\u009b31m\u0085`,
		"abc\u202edcba\u2066\u2069":   `abc\u202edcba\u2066\u2069`,
		"line\u2028sep":               `line\u2028sep`,
		"bad\xffutf8\xc2":             `bad\xffutf8\xc2`,
	} {
		if got := termSafe(in); got != want {
			t.Errorf("termSafe(%q) = %q, want %q", in, got, want)
		}
	}
	if got := oneLine("first\r\nsecond\t\x1b[31mred", 100); got != `first second \x1b[31mred` {
		t.Errorf("oneLine = %q", got)
	}
}
