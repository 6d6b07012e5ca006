package main

// The harness of cmd/errand's tests: the stack (errand as a user runs it,
// against real Redis and SMTP and fakes of the services it calls), the one
// source of their secrets, and the one set of helpers the tests drive it
// with — HTTP requests, the CLI, enqueueing and waiting, escalations, what
// Redis and the database hold, and the fixtures several tests share.

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/fulfillment"
	"github.com/errandhq/errand/internal/redistest"
	"github.com/errandhq/errand/internal/sandbox"
	"github.com/errandhq/errand/internal/shopify"
	"github.com/errandhq/errand/internal/smtptest"
	"github.com/errandhq/errand/internal/store"
	"github.com/errandhq/errand/internal/store/pgtest"
	"github.com/errandhq/errand/internal/tidio"
	"github.com/hibiken/asynq"
	"github.com/knadh/koanf/parsers/toml/v2"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/v2"
)

// ---- The stack ----

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

// Reset empties the buffer.
func (b *syncBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Reset()
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
	redis    *redistest.Server   // nil on a cluster
	cluster  *redistest.Nodes    // with stackOptions.cluster
	sentinel *redistest.Sentinel // with stackOptions.sentinel
	smtp     *smtptest.Server
	sandbox  *sandbox.Sandbox // local fakes of the services errand calls
	fakes    string           // their base URL
	services *config.Config   // testServices(fakes): what errand and the fakes were given
	dir      string
	config   string
	base     string
	serve    *syncBuffer
	worker   *syncBuffer
	workers  []*syncBuffer // the log of every worker startWorker started, worker's first
	stopped  []func()
	store    store.Store // the stack's database, opened by db() on first use
	dbURL    string      // database.url
	// With stackOptions.serves or workers: every serve's base URL (base is
	// the first) and every process's log (serve and worker are the first's).
	bases               []string
	serveLogs, workLogs []*syncBuffer
}

type stackOptions struct {
	toml        string   // appended to the generated config
	workerArgs  []string // extra flags for `errand worker`
	noWorker    bool
	dashboardPW string
	smtpTimeout string                          // [smtp] timeout; default 5s
	notifyKind  string                          // [notify] kind; "slack" when empty
	wrapFakes   func(http.Handler) http.Handler // wraps the sandbox's handler, e.g. to set its clock
	redis       []redistest.Option              // options of the redis-server
	sentinel    bool                            // Redis is a master, a replica and three sentinels (sentinel_test.go)
	// cluster runs errand on this Redis Cluster (redis.mode = "cluster",
	// e.g. redistest.StartCluster(t, 3)) instead of one redis-server.
	cluster *redistest.Nodes
	// publicCallbacksOnly sets api.allow_private_callbacks = false: callbacks
	// to loopback, where every test receiver listens, are refused.
	publicCallbacksOnly bool
	noCallbackSecret    bool // leaves api.callback_secret empty
	// postgres: the database is a fresh PostgreSQL database (pgtest)
	// instead of a SQLite file.
	postgres bool
	pollOnly bool // database.poll_only
	// serves, workers: run that many `errand serve` and `errand worker`
	// processes of the built binary, all on the one database and Redis,
	// instead of one of each in this process.
	serves, workers int
	// configOnly writes the config and starts no errand process: the test
	// runs them itself (under supervisord, deploy_test.go).
	configOnly bool
}

// escalationTo is escalation.to: the developers' address, where final
// failures are reported.
const escalationTo = "dev@acme.test"

func startStack(t *testing.T, o stackOptions) *stack {
	t.Helper()
	s := &stack{t: t, smtp: smtptest.Start(t), dir: t.TempDir(), serve: &syncBuffer{}, worker: &syncBuffer{}}
	if o.cluster != nil {
		s.cluster = o.cluster
	} else if o.sentinel {
		s.sentinel = redistest.StartSentinel(t)
		s.redis = s.sentinel.Master // the helpers read this server until a failover
	} else {
		s.redis = redistest.Start(t, o.redis...)
	}
	s.dbURL = "file:" + filepath.Join(s.dir, "errand.db")
	if o.postgres {
		s.dbURL = pgtest.URL(t)
	}
	httpAddr := freeAddr(t)
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
	// writeConfig writes the configuration with errand serve on httpAddr.
	writeConfig := func(httpAddr string) {
		s.base = "http://" + httpAddr
		cfg := fmt.Sprintf(`
%s[http]
addr = %q
public_url = %q
[database]
url = %q
poll_only = %v
[smtp]
host = "127.0.0.1"
port = %d
from = "Acme Shop <shop@acme.test>"
timeout = %q
[escalation]
to = [%q]
window = "2s"
[dashboard]
password = %q
[log]
level = "debug"
`, s.redisTOML(), httpAddr, s.base, s.dbURL, o.pollOnly, s.smtp.Port(), cmp.Or(o.smtpTimeout, "5s"), escalationTo, o.dashboardPW) +
			servicesTOML(t, s.services) + withAPIKeys(o.toml, apiKeys(o))
		s.config = filepath.Join(s.dir, "config.toml")
		if err := os.WriteFile(s.config, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeConfig(httpAddr)
	if o.configOnly {
		return s
	}
	if o.serves > 0 || o.workers > 0 {
		s.startProcesses(httpAddr, o)
		return s
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
	// The port freeAddr found free can be taken before serve binds it (by
	// another test's server, or as the local port of a connection): serve
	// then stops at once, and starts again on another port.
	for attempt := 1; ; attempt++ {
		p := s.start("serve", s.serve)
		err := s.waitHealthy(p)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EADDRINUSE) || attempt == 5 {
			t.Fatalf("errand serve: %v; log:\n%s", err, s.serve.String())
		}
		t.Logf("errand serve could not listen on %s (%v): another port", s.base, err)
		s.stopped = s.stopped[:len(s.stopped)-1] // it has stopped
		s.serve.Reset()
		writeConfig(freeAddr(t))
	}
	if !o.noWorker {
		s.startWorker(s.worker, o.workerArgs...)
	}
	return s
}

// startProcesses runs o.serves `errand serve` (the first on httpAddr) and
// o.workers `errand worker` processes of the built binary, and waits until
// each serves or has started.
func (s *stack) startProcesses(httpAddr string, o stackOptions) {
	s.t.Helper()
	bin := errandBinary(s.t)
	s.t.Cleanup(func() {
		if s.t.Failed() {
			for i, l := range s.serveLogs {
				s.t.Logf("serve %d log:\n%s", i+1, l.String())
			}
			for i, l := range s.workLogs {
				s.t.Logf("worker %d log:\n%s", i+1, l.String())
			}
		}
	})
	for i := range o.serves {
		addr := httpAddr
		if i > 0 {
			addr = freeAddr(s.t)
		}
		_, log := startBinary(s.t, bin, "serve", "--config", s.config, "--addr", addr)
		s.serveLogs = append(s.serveLogs, log)
		s.bases = append(s.bases, "http://"+addr)
	}
	for _, base := range s.bases {
		s.waitFor(30*time.Second, "errand serve at "+base, func() bool {
			r, err := http.Get(base + "/healthz")
			if err == nil {
				r.Body.Close()
			}
			return err == nil && r.StatusCode == 200
		})
	}
	for range o.workers {
		_, log := startBinary(s.t, bin, append([]string{"worker", "--config", s.config}, o.workerArgs...)...)
		s.workLogs = append(s.workLogs, log)
	}
	for _, log := range s.workLogs {
		s.waitFor(30*time.Second, "errand worker to start", func() bool { return len(log.lines("worker started")) > 0 })
	}
	if len(s.serveLogs) > 0 {
		s.serve = s.serveLogs[0]
	}
	if len(s.workLogs) > 0 {
		s.worker = s.workLogs[0]
	}
}

// proc is an errand command running in this process: done is closed when
// it has returned err.
type proc struct {
	done chan struct{}
	err  error
}

// start runs an errand command in this process until the test ends.
func (s *stack) start(cmd string, log *syncBuffer, args ...string) *proc {
	ctx, cancel := context.WithCancel(context.Background())
	p := &proc{done: make(chan struct{})}
	go func() {
		p.err = run(ctx, append([]string{cmd, "--config", s.config}, args...), nil, log, log)
		close(p.done)
	}()
	s.stopped = append(s.stopped, func() {
		cancel()
		select {
		case <-p.done:
			if p.err != nil {
				s.t.Errorf("errand %s: %v", cmd, p.err)
			}
		case <-time.After(40 * time.Second):
			s.t.Errorf("errand %s did not stop", cmd)
		}
	})
	return p
}

// startWorker runs `errand worker` in this process, logging to log, and
// waits until it has started.
func (s *stack) startWorker(log *syncBuffer, args ...string) {
	s.t.Helper()
	s.start("worker", log, args...)
	s.workers = append(s.workers, log)
	s.waitFor(15*time.Second, "the worker to start", func() bool { return len(log.lines("worker started")) > 0 })
}

// healthy says whether base answers /healthz with 200, asking with a
// deadline: whatever holds a taken port may never answer.
func healthy(base string) bool {
	c := http.Client{Timeout: 2 * time.Second}
	r, err := c.Get(base + "/healthz")
	if err != nil {
		return false
	}
	r.Body.Close()
	return r.StatusCode == http.StatusOK
}

func (s *stack) waitHealthy(p *proc) error {
	s.t.Helper()
	// A serve starts in well under a second; the bound leaves room for a
	// machine running many race-enabled tests at once, and a slow start is
	// logged so its cause can be read.
	start := time.Now()
	deadline := start.Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("stopped before it answered /healthz: %w", p.err)
		default:
		}
		// Its own line first: another test's serve may hold a taken port.
		if len(s.serve.lines("msg=serving", "addr="+strings.TrimPrefix(s.base, "http://"))) > 0 && healthy(s.base) {
			if took := time.Since(start); took > 5*time.Second {
				s.t.Logf("errand serve took %s to answer /healthz; log:\n%s", took.Round(time.Millisecond), s.serve.String())
			}
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("no answer to /healthz within 30 s")
}

// waitFor polls cond until it holds, failing the test after timeout.
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

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// ---- Configuration the tests add ----

// The API tokens of the tests: at least 16 characters, as errand requires.
const (
	firstToken  = "first-token-0123456789"
	secondToken = "second-token-0123456789"
)

var apiTOML = fmt.Sprintf(`
[api]
tokens = [%q, %q]
`, firstToken, secondToken)

// welcomeAtOnce sends the welcome email without its 5 s delay.
const welcomeAtOnce = `
[jobs."user:welcome_email"]
delay = "0s"
`

// escalateRetries retries a failed escalation email within a second or two.
const escalateRetries = `
[jobs."ops:escalate"]
backoff = ["500ms", "1s"]
`

// fastRetries makes the welcome email run at once and retry after a second.
const fastRetries = `
[jobs."user:welcome_email"]
delay = "0s"
backoff = ["1s"]
` + escalateRetries

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

// apiKeys are the harness's [api] settings: callbacks signed, and allowed to
// loopback unless the test attacks that.
func apiKeys(o stackOptions) string {
	secret := testCallbackSecret
	if o.noCallbackSecret {
		secret = ""
	}
	return fmt.Sprintf("callback_secret = %q\nallow_private_callbacks = %v\n", secret, !o.publicCallbacksOnly)
}

// redisTOML is the [redis] table: the one server, or the cluster's seeds.
func (s *stack) redisTOML() string {
	if s.cluster != nil {
		return fmt.Sprintf("[redis]\nmode = \"cluster\"\naddrs = [%q, %q, %q]\n", s.cluster.Addrs()[0], s.cluster.Addrs()[1], s.cluster.Addrs()[2])
	}
	return fmt.Sprintf("[redis]\naddr = %q\npassword = %q\ntls = %v\ntls_ca_file = %q\n",
		s.redis.Addr(), s.redis.Password(), s.redis.TLSConfig() != nil, caFile(s.redis)) + redisLoginTOML(s.redis) + sentinelTOML(s.sentinel)
}

// redisLoginTOML is the [redis] ACL user and client certificate, for a
// server started with redistest.ACLUser or redistest.ClientCerts.
func redisLoginTOML(r *redistest.Server) string {
	var b strings.Builder
	if r.Username() != "" {
		fmt.Fprintf(&b, "username = %q\n", r.Username())
	}
	if c := r.TLSConfig(); c != nil && len(c.Certificates) > 0 {
		fmt.Fprintf(&b, "tls_cert_file = %q\ntls_key_file = %q\n", r.ClientCertFile(), r.ClientKeyFile())
	}
	return b.String()
}

func caFile(r *redistest.Server) string {
	if r.TLSConfig() == nil {
		return ""
	}
	return r.CAFile()
}

// ---- Services and secrets ----

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

// noSecrets fails when the worker's log or text shows a credential.
func (s *stack) noSecrets(texts ...string) {
	s.t.Helper()
	for _, text := range append(texts, s.worker.String()) {
		for _, secret := range testSecrets() {
			if strings.Contains(text, secret) {
				s.t.Fatalf("%q is shown in a log line or email", secret)
			}
		}
	}
}

// ---- HTTP ----

// reply is errand's answer to one request.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// json is the body as a JSON object; nil when it is not one.
func (r reply) json() map[string]any {
	var out map[string]any
	_ = json.Unmarshal(r.body, &out)
	return out
}

// send is the one place the tests make a request of errand. A body of nil
// sends none; a string or []byte is sent as it is, anything else as JSON, in
// every case with Content-Type: application/json. header comes last (a Host
// in it is the Host sent). A transport error is returned, not fatal: a
// handler that panics answers nothing at all.
func (s *stack) send(method, path string, body any, header http.Header) (reply, error) {
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			return reply{}, err
		}
		r = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, s.base+path, r)
	if err != nil {
		return reply{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, vs := range header {
		req.Header[k] = append([]string(nil), vs...)
	}
	if host := req.Header.Get("Host"); host != "" {
		req.Host = host
		req.Header.Del("Host")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: raw}, err
}

// request is send whose transport error fails the test.
func (s *stack) request(method, path string, body any, header http.Header) reply {
	s.t.Helper()
	r, err := s.send(method, path, body, header)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// headers is name, value, name, value… as a header.
func headers(pairs ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(pairs); i += 2 {
		h.Set(pairs[i], pairs[i+1])
	}
	return h
}

// get is GET path's status and body.
func (s *stack) get(path string) (int, string) {
	s.t.Helper()
	r := s.request("GET", path, nil, nil)
	return r.status, string(r.body)
}

// post POSTs body (see send) with header, which may be nil, and returns the
// status and the answer's JSON object.
func (s *stack) post(path string, body any, header http.Header) (int, map[string]any) {
	s.t.Helper()
	r := s.request("POST", path, body, header)
	return r.status, r.json()
}

// api calls errand's API with a bearer token (none when empty); header is
// name, value… set after it.
func (s *stack) api(method, path, token, body string, header ...string) (int, map[string]any, http.Header) {
	s.t.Helper()
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	for k, vs := range headers(header...) {
		h[k] = vs
	}
	r := s.request(method, path, body, h)
	return r.status, r.json(), r.header
}

// dashboardRequest sends method path to the dashboard with the given Host
// (none: the stack's own), basic auth (user empty: none) and headers.
func (s *stack) dashboardRequest(method, path, host, user, pass string, header ...string) (int, http.Header, string) {
	s.t.Helper()
	h := http.Header{}
	if host != "" {
		h.Set("Host", host)
	}
	if user != "" {
		h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":"+pass)))
	}
	for k, vs := range headers(header...) {
		h[k] = vs
	}
	r := s.request(method, path, nil, h)
	return r.status, r.header, string(r.body)
}

// jobStatus is GET /api/jobs/{id} with token.
func (s *stack) jobStatus(token, id string) (int, map[string]any) {
	s.t.Helper()
	code, st, _ := s.api("GET", "/api/jobs/"+id, token, "")
	return code, st
}

// waitJobState waits until GET /api/jobs/{id} with token answers state, and
// returns that answer.
func (s *stack) waitJobState(token, id, state string) map[string]any {
	s.t.Helper()
	var st map[string]any
	s.waitFor(20*time.Second, "job "+id+" to be "+state, func() bool {
		var code int
		code, st = s.jobStatus(token, id)
		return code == http.StatusOK && st["state"] == state
	})
	return st
}

// ---- The CLI, jobs and escalations ----

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

// enqueue queues a job with `errand enqueue` and returns its id.
func (s *stack) enqueue(jobType, payload string) string {
	s.t.Helper()
	out, err := s.cli("enqueue", jobType, "--payload", payload)
	f := strings.Fields(out) // queued TYPE ID on QUEUE, due …
	if err != nil || len(f) < 3 || f[0] != "queued" {
		s.t.Fatalf("enqueue %s: %v: %s", jobType, err, out)
	}
	return f[2]
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

// failedJob is the job id in the failed list, or nil.
func (s *stack) failedJob(id string) map[string]any {
	s.t.Helper()
	for _, f := range s.failed() {
		if f["id"] == id {
			return f
		}
	}
	return nil
}

// waitDone waits for the job's "job done" line, in the log of whichever
// worker ran it, and returns it.
func (s *stack) waitDone(id string) string {
	s.t.Helper()
	var done string
	s.waitFor(20*time.Second, "job "+id+" to complete", func() bool {
		for _, log := range s.workers {
			if l := log.lines("job_id="+id, "job done"); len(l) > 0 {
				done = l[0]
				return true
			}
		}
		return false
	})
	return done
}

// waitEscalated waits for the job in the failed list after attempts attempts
// and for exactly one escalation email, which must name the job, its
// attempts, its class and lastError, and show no secret.
func (s *stack) waitEscalated(id string, attempts int, class, lastError string) {
	s.t.Helper()
	var job map[string]any
	s.waitFor(20*time.Second, "job "+id+" in the failed list", func() bool {
		job = s.failedJob(id)
		return job != nil
	})
	if job["attempts"] != float64(attempts) || job["max_attempts"] != 3.0 {
		s.t.Fatalf("failed after %v of %v attempts, want %d of 3: %v", job["attempts"], job["max_attempts"], attempts, job)
	}
	s.waitFor(15*time.Second, "the escalation email", func() bool { return len(s.escalations()) > 0 })
	time.Sleep(500 * time.Millisecond) // a second email would be a bug; give it a moment to show
	esc := s.escalations()
	if len(esc) != 1 {
		s.t.Fatalf("%d escalation emails, want 1", len(esc))
	}
	s.t.Logf("escalation email:\n%s", esc[0].Text)
	for _, want := range []string{id, fmt.Sprintf("%d of 3", attempts), class, lastError} {
		if !strings.Contains(esc[0].Text, want) {
			s.t.Errorf("the escalation lacks %q:\n%s", want, esc[0].Text)
		}
	}
	s.noSecrets(esc[0].Text)
}

// waitThrottled waits for the job to complete and checks that it was
// throttled once per wait in told — no attempt used, each retry logged with
// the wait the service asked for — and that each next call to service came
// no earlier than told, less early.
func (s *stack) waitThrottled(id, service string, early time.Duration, told ...time.Duration) {
	s.t.Helper()
	if done := s.waitDone(id); !strings.Contains(done, "attempt=1 ") {
		s.t.Fatalf("a throttled retry used an attempt: %s", done)
	}
	for _, wait := range told {
		if n := len(s.worker.lines("job_id="+id, "will retry", "class=throttled", "counts=false", "retry_in="+wait.String())); n != 1 {
			s.t.Fatalf("want one throttled retry after %s in the log, got %d", wait, n)
		}
	}
	calls := s.sandbox.Calls(service)
	if len(calls) < len(told)+1 {
		s.t.Fatalf("%d calls, want at least %d", len(calls), len(told)+1)
	}
	for i, wait := range told {
		gap := calls[i+1].At.Sub(calls[i].At)
		s.t.Logf("told to wait %s; the next call came %s later", wait, gap.Round(time.Millisecond))
		if gap < wait-early {
			s.t.Fatalf("the call after a %s throttle came %s later", wait, gap)
		}
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

// escalations are the emails the developers were sent.
func (s *stack) escalations() []smtptest.Message { return s.mailTo(escalationTo) }

// ---- What Redis and the database hold ----

// inspector reads and changes the queues as asynq does.
func (s *stack) inspector() *asynq.Inspector {
	return asynq.NewInspectorFromRedisClient(s.redis.Client())
}

// foreignClient queues jobs as another program on the same Redis would,
// around errand's own checks.
func (s *stack) foreignClient() *asynq.Client {
	return asynq.NewClientFromRedisClient(s.redis.Client())
}

// queued returns the jobs waiting in Redis (pending or scheduled), of one
// queue, once the relay has moved them.
func (s *stack) queued(queue string) []*asynq.TaskInfo {
	s.t.Helper()
	time.Sleep(300 * time.Millisecond) // the relay runs on commit
	ins := s.inspector()
	pending, _ := ins.ListPendingTasks(queue)
	scheduled, _ := ins.ListScheduledTasks(queue)
	return append(pending, scheduled...)
}

// jobIDs lists the ids of every job Redis holds in queues, whatever its state.
func (s *stack) jobIDs(queues ...string) []string {
	s.t.Helper()
	ins := s.inspector()
	var ids []string
	for _, q := range queues {
		for _, list := range []func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){
			ins.ListPendingTasks, ins.ListScheduledTasks, ins.ListActiveTasks, ins.ListRetryTasks,
			ins.ListCompletedTasks, ins.ListArchivedTasks,
		} {
			tasks, _ := list(q)
			for _, t := range tasks {
				ids = append(ids, t.ID)
			}
		}
	}
	return ids
}

func (s *stack) paused(queue string) bool {
	s.t.Helper()
	info, err := s.inspector().GetQueueInfo(queue)
	if err != nil {
		s.t.Fatalf("queue %s: %v", queue, err)
	}
	return info.Paused
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

// db is the stack's database, opened beside errand's own connection.
func (s *stack) db() store.Store {
	s.t.Helper()
	if s.store == nil {
		st, err := store.Open(s.dbURL)
		if err != nil {
			s.t.Fatal(err)
		}
		s.t.Cleanup(func() { st.Close() })
		s.store = st
	}
	return s.store
}

// ---- Fixtures ----

func registration(email string) map[string]any {
	return map[string]any{"email": email, "first_name": "Ada", "last_name": "Lovelace", "password": "correct horse battery"}
}

// orderPaidBody is a Shopify orders/paid webhook's body.
func orderPaidBody(id int64) []byte {
	return []byte(fmt.Sprintf(`{"id":%d,"name":"#1001","email":"ada@shop.test","currency":"EUR","total_price":"42.00",
"line_items":[{"sku":"MUG-1","title":"Mug","quantity":2,"price":"21.00"}],
"shipping_address":{"name":"Ada Lovelace","address1":"1 Analytical Way","city":"London","zip":"N1","country_code":"GB"}}`, id))
}

// shopifySign and callbackSign sign as Shopify and the fulfillment platform
// document it, written apart from internal/shopify and internal/fulfillment
// so that a mistake shared by errand's signing and checking cannot hide.
// callbackSign is also the v1 of errand's own X-Errand-Signature.
func shopifySign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func callbackSign(secret, ts string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "."))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// verifyCallback is what a receiver does with X-Errand-Signature
// ("t=<unix>,v1=<hex>"): recompute HMAC-SHA256(secret, t + "." + body),
// compare in constant time, and refuse a t more than 5 minutes away.
func verifyCallback(header string, body []byte, secret string, now time.Time) error {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	t, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return fmt.Errorf("malformed X-Errand-Signature %q", header)
	}
	if d := now.Sub(time.Unix(t, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("signature timestamp %d is %s away", t, d)
	}
	if !hmac.Equal([]byte(sig), []byte(callbackSign(secret, ts, body))) {
		return fmt.Errorf("signature does not match")
	}
	return nil
}

// receiver is a listener of the test's own — a callback receiver, or an
// address errand must not reach — that records every request it gets and
// then answers with answer (nil: 200 OK).
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []received
}

// received is one request a receiver got.
type received struct {
	header http.Header
	body   []byte
}

func startReceiver(t *testing.T, answer http.HandlerFunc) *receiver {
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, received{header: r.Header.Clone(), body: body})
		rc.mu.Unlock()
		if answer != nil {
			answer(w, r)
		}
	}))
	t.Cleanup(rc.Close)
	return rc
}

// requests are the requests received so far.
func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.reqs...)
}

func (rc *receiver) count() int { return len(rc.requests()) }

// outcomes are the bodies received, each decoded as a JSON object: the
// callbacks errand sent.
func (rc *receiver) outcomes() []map[string]any {
	var out []map[string]any
	for _, r := range rc.requests() {
		var m map[string]any
		_ = json.Unmarshal(r.body, &m)
		out = append(out, m)
	}
	return out
}

// text is every request received, headers and body, as text to search.
func (rc *receiver) text() string {
	var b bytes.Buffer
	for _, r := range rc.requests() {
		_ = r.header.Write(&b)
		b.Write(r.body)
	}
	return b.String()
}

// str is v as a string, or "" when it is not one.
func str(v any) string { s, _ := v.(string); return s }

// ---- The built binary, for tests that send signals ----

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// errandBinary builds the errand binary once for the tests that need a real
// process (signals).
func errandBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "errand-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "errand")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// slowJobInFlight starts the stack with no worker (toml added to its config),
// queues one welcome email that SMTP takes latency to accept, and runs the
// built binary's worker until that email is being sent.
func slowJobInFlight(t *testing.T, latency time.Duration, toml string) (*stack, *exec.Cmd, *syncBuffer) {
	t.Helper()
	return slowJobInFlightOn(t, latency, stackOptions{toml: toml})
}

// slowJobInFlightOn is slowJobInFlight on a stack of o (welcomeAtOnce is
// prepended to o.toml, and no worker is started with the stack).
func slowJobInFlightOn(t *testing.T, latency time.Duration, o stackOptions) (*stack, *exec.Cmd, *syncBuffer) {
	t.Helper()
	bin := errandBinary(t)
	o.noWorker, o.toml = true, welcomeAtOnce+o.toml
	s := startStack(t, o)
	s.smtp.SetLatency(latency)
	s.enqueue("user:welcome_email", `{"user_id":1,"email":"slow@shop.test","first_name":"S"}`)
	w, log := startBinary(t, bin, "worker", "--config", s.config)
	s.waitFor(20*time.Second, "the job to start", func() bool { return s.smtp.Attempts() >= 1 })
	return s, w, log
}

// startBinary runs the built errand binary with args; its output goes to the
// returned buffer. It is killed when the test ends, if still running.
func startBinary(t *testing.T, bin string, args ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	log := &syncBuffer{}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	return cmd, log
}

// sentinelTOML is the rest of [redis] for a Sentinel deployment, or "".
func sentinelTOML(d *redistest.Sentinel) string {
	if d == nil {
		return ""
	}
	return fmt.Sprintf("mode = \"sentinel\"\naddrs = [\"%s\"]\nmaster_name = %q\n", strings.Join(d.Addrs(), `", "`), redistest.MasterName)
}
