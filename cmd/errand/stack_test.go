package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/fulfillment"
	"github.com/errandhq/errand/internal/redistest"
	"github.com/errandhq/errand/internal/sandbox"
	"github.com/errandhq/errand/internal/shopify"
	"github.com/errandhq/errand/internal/smtptest"
	"github.com/errandhq/errand/internal/tidio"
	"github.com/knadh/koanf/parsers/toml/v2"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/v2"
)

// syncBuffer collects a process's log lines for assertions.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines returns the log lines that contain every one of subs.
func (b *syncBuffer) lines(subs ...string) []string {
	var out []string
	for _, l := range strings.Split(b.String(), "\n") {
		ok := l != ""
		for _, s := range subs {
			ok = ok && strings.Contains(l, s)
		}
		if ok {
			out = append(out, l)
		}
	}
	return out
}

// stack is errand as a user runs it — `errand serve` and `errand worker` —
// against a real redis-server and a real SMTP server on free loopback ports.
type stack struct {
	t        *testing.T
	redis    *redistest.Server
	smtp     *smtptest.Server
	sandbox  *sandbox.Sandbox // local fakes of the services errand calls
	fakes    string           // their base URL
	services *config.Config   // testServices(fakes): what errand and the fakes were given
	dir      string
	config   string
	base     string
	serve    *syncBuffer
	worker   *syncBuffer
	stopped  []func()
}

type stackOptions struct {
	toml        string   // appended to the generated config
	workerArgs  []string // extra flags for `errand worker`
	noWorker    bool
	dashboardPW string
	notifyKind  string                          // [notify] kind; "slack" when empty
	wrapFakes   func(http.Handler) http.Handler // wraps the sandbox's handler, e.g. to set its clock
	redis       []redistest.Option              // options of the redis-server
	// publicCallbacksOnly sets api.allow_private_callbacks = false: callbacks
	// to loopback, where every test receiver listens, are refused.
	publicCallbacksOnly bool
	noCallbackSecret    bool // leaves api.callback_secret empty
}

// testCallbackSecret is api.callback_secret, which signs the callbacks.
const testCallbackSecret = "callback-secret-never-leak-0123"

// apiHeader is an [api] table's header line.
var apiHeader = regexp.MustCompile(`(?m)^[ \t]*\[api\][ \t]*$`)

// withAPIKeys adds keys to the [api] table of a test's extra TOML, or adds
// the table: TOML allows a table to be defined only once.
func withAPIKeys(extra, keys string) string {
	loc := apiHeader.FindStringIndex(extra)
	if loc == nil {
		return extra + "\n[api]\n" + keys
	}
	return extra[:loc[1]] + "\n" + keys + extra[loc[1]:]
}

// testServices is every service errand calls in the stack tests, pointed at
// the sandbox at sandboxURL: the one place their credentials are written.
// The stack writes its [notify], [crm], [fulfillment] and [shopify] tables
// from it (servicesTOML), the sandbox checks requests against it, the samples
// are signed with it, and testSecrets lists what in it must never leak.
func testServices(sandboxURL string) *config.Config {
	c := config.Default()
	c.Notify = config.Notify{
		Kind:             "slack",
		DefaultRep:       "alice",
		BaseURL:          sandboxURL,
		TelegramBotToken: "123456:test-bot-token",
		Reps: map[string]config.Rep{
			"alice": {Name: "Alice", SlackWebhookURL: "https://hooks.slack.com/services/T000/B000/alice", TelegramChatID: "1001"},
			"bob":   {Name: "Bob", SlackWebhookURL: "https://hooks.slack.com/services/T000/B000/bob", TelegramChatID: "1002"},
		},
	}
	c.CRM = tidio.Config{BaseURL: sandboxURL, ClientID: "tidio-client-id", ClientSecret: "tidio-client-secret"}
	c.Fulfill = fulfillment.Config{BaseURL: sandboxURL, AppKey: "mabang-app-key", AppSecret: "mabang-app-secret",
		CallbackSecret: "fulfillment-callback-secret"}
	c.Shopify = shopify.Config{Shop: "acme.myshopify.com", AccessToken: "shpat_test_token", APIVersion: "2025-07",
		BaseURL: sandboxURL, WebhookSecret: "shopify-webhook-secret"}
	return c
}

// servicesTOML is c as config.toml tables: every key whose value differs from
// the default, so a service added to testServices needs no TOML of its own.
func servicesTOML(t *testing.T, c *config.Config) string {
	t.Helper()
	defaults := config.Default().Keys()
	changed := map[string]any{}
	for key, v := range c.Keys() {
		if d, ok := defaults[key]; !ok || !reflect.DeepEqual(d, v) {
			changed[key] = v
		}
	}
	k := koanf.New(".")
	if err := k.Load(confmap.Provider(changed, "."), nil); err != nil {
		t.Fatal(err)
	}
	out, err := k.Marshal(toml.Parser())
	if err != nil {
		t.Fatal(err)
	}
	return "\n" + string(out)
}

// secretKey matches the keys whose values are secrets.
var secretKey = regexp.MustCompile(`(secret|token|password|webhook_url)$`)

// testSecrets are the secrets in testServices: no log line, queued payload,
// email, metric or call to another service may show one. Of a webhook URL,
// the path is the secret.
func testSecrets() []string {
	var out []string
	for key, v := range testServices("").Keys() {
		s, ok := v.(string)
		if !ok || s == "" || !secretKey.MatchString(key) {
			continue
		}
		if strings.HasSuffix(key, "webhook_url") {
			u, err := url.Parse(s)
			if err != nil || u.Path == "" {
				panic("testServices: " + key + " is not a URL with a path")
			}
			s = u.Path
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func startStack(t *testing.T, o stackOptions) *stack {
	t.Helper()
	s := &stack{t: t, redis: redistest.Start(t, o.redis...), smtp: smtptest.Start(t), dir: t.TempDir(), serve: &syncBuffer{}, worker: &syncBuffer{}}
	httpAddr := freeAddr(t)
	s.base = "http://" + httpAddr
	// The services errand calls, faked on their real wire formats and
	// checking the credentials errand is given. The listener comes first, so
	// the one testServices value can carry its URL.
	fakes := httptest.NewUnstartedServer(nil)
	s.fakes = "http://" + fakes.Listener.Addr().String()
	s.services = testServices(s.fakes)
	if o.notifyKind != "" {
		s.services.Notify.Kind = o.notifyKind
	}
	s.sandbox = sandbox.New(s.services)
	var fakesHandler http.Handler = s.sandbox.Handler()
	if o.wrapFakes != nil {
		fakesHandler = o.wrapFakes(fakesHandler)
	}
	fakes.Config.Handler = fakesHandler
	fakes.Start()
	t.Cleanup(fakes.Close)
	cfg := fmt.Sprintf(`
[redis]
addr = %q
password = %q
tls = %v
tls_ca_file = %q
`+redisLoginTOML(s.redis)+`[http]
addr = %q
public_url = %q
[database]
url = %q
[smtp]
host = "127.0.0.1"
port = %d
from = "Acme Shop <shop@acme.test>"
timeout = "5s"
[escalation]
to = ["dev@acme.test"]
window = "2s"
[dashboard]
password = %q
[log]
level = "debug"
`, s.redis.Addr(), s.redis.Password(), s.redis.TLSConfig() != nil, caFile(s.redis), httpAddr, s.base, "file:"+filepath.Join(s.dir, "errand.db"), s.smtp.Port(), o.dashboardPW) +
		servicesTOML(t, s.services) + withAPIKeys(o.toml, apiKeys(o))
	s.config = filepath.Join(s.dir, "config.toml")
	if err := os.WriteFile(s.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s.start("serve", s.serve)
	s.waitHealthy()
	if !o.noWorker {
		s.start("worker", s.worker, o.workerArgs...)
		s.waitFor(15*time.Second, "the worker to start", func() bool { return len(s.worker.lines("worker started")) > 0 })
	}
	t.Cleanup(func() {
		for i := len(s.stopped) - 1; i >= 0; i-- {
			s.stopped[i]()
		}
		if t.Failed() {
			t.Logf("serve log:\n%s", s.serve.String())
			t.Logf("worker log:\n%s", s.worker.String())
		}
	})
	return s
}

// apiKeys are the harness's [api] settings: callbacks signed, and allowed to
// loopback unless the test attacks that.
func apiKeys(o stackOptions) string {
	secret := testCallbackSecret
	if o.noCallbackSecret {
		secret = ""
	}
	return fmt.Sprintf("callback_secret = %q\nallow_private_callbacks = %v\n", secret, !o.publicCallbacksOnly)
}

// start runs an errand command in this process until the test ends.
func (s *stack) start(cmd string, log *syncBuffer, args ...string) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{cmd, "--config", s.config}, args...), nil, log, log)
	}()
	s.stopped = append(s.stopped, func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				s.t.Errorf("errand %s: %v", cmd, err)
			}
		case <-time.After(40 * time.Second):
			s.t.Errorf("errand %s did not stop", cmd)
		}
	})
}

func (s *stack) waitHealthy() {
	s.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(s.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("errand serve did not answer /healthz; log:\n%s", s.serve.String())
}

// cli runs an errand command to completion and returns its output.
func (s *stack) cli(args ...string) (string, error) {
	var out, errOut bytes.Buffer
	full := append([]string{args[0], "--config", s.config}, args[1:]...)
	err := run(context.Background(), full, nil, &out, &errOut)
	if err != nil {
		return out.String() + errOut.String(), err
	}
	return out.String(), nil
}

func (s *stack) post(path string, body any, header ...string) (int, map[string]any) {
	s.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		js, _ := json.Marshal(b)
		r = bytes.NewReader(js)
	}
	req, _ := http.NewRequest("POST", s.base+path, r)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

// failed returns `errand failed list --json`.
func (s *stack) failed() []map[string]any {
	s.t.Helper()
	out, err := s.cli("failed", "list", "--json")
	if err != nil {
		s.t.Fatalf("errand failed list: %v: %s", err, out)
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		s.t.Fatalf("failed list --json: %v: %s", err, out)
	}
	return list
}

func (s *stack) waitFor(timeout time.Duration, what string, cond func() bool) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			s.t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// mailTo returns the accepted messages addressed to addr.
func (s *stack) mailTo(addr string) []smtptest.Message {
	var out []smtptest.Message
	for _, m := range s.smtp.Messages() {
		for _, to := range m.To {
			if strings.EqualFold(to, addr) {
				out = append(out, m)
			}
		}
	}
	return out
}

func registration(email string) map[string]any {
	return map[string]any{"email": email, "first_name": "Ada", "last_name": "Lovelace", "password": "correct horse battery"}
}

// redisText returns everything Redis holds, key by key, as text to search:
// values are read by type (DUMP would hide them behind compression).
func (s *stack) redisText() map[string]string {
	s.t.Helper()
	ctx := context.Background()
	c := s.redis.Client()
	keys, err := c.Keys(ctx, "*").Result()
	if err != nil {
		s.t.Fatalf("redis keys: %v", err)
	}
	out := map[string]string{}
	for _, k := range keys {
		var parts []string
		switch c.Type(ctx, k).Val() {
		case "string":
			parts = []string{c.Get(ctx, k).Val()}
		case "hash":
			for f, v := range c.HGetAll(ctx, k).Val() {
				parts = append(parts, f, v)
			}
		case "list":
			parts = c.LRange(ctx, k, 0, -1).Val()
		case "set":
			parts = c.SMembers(ctx, k).Val()
		case "zset":
			parts = c.ZRange(ctx, k, 0, -1).Val()
		case "stream":
			for _, m := range c.XRange(ctx, k, "-", "+").Val() {
				for f, v := range m.Values {
					parts = append(parts, f, fmt.Sprint(v))
				}
			}
		}
		out[k] = strings.Join(parts, "\n")
	}
	return out
}

func caFile(r *redistest.Server) string {
	if r.TLSConfig() == nil {
		return ""
	}
	return r.CAFile()
}
