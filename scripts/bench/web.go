package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/sandbox"
)

// --- the third-party services, faked in this process ------------------------

// services are the fakes errand's jobs call: internal/sandbox for Slack,
// Telegram, Tidio, the fulfillment gateway and Shopify, and an SMTP sink.
type services struct {
	sb       *sandbox.Sandbox
	httpURL  string
	httpSrv  *http.Server
	calls    atomic.Int64 // HTTP calls received
	smtpSrv  *smtp.Server
	smtpPort int
	smtpWait atomic.Int64 // ns each MAIL FROM waits
	mails    atomic.Int64
}

// Credentials the fakes check and errand is configured with.
const servicesTOML = `
[notify]
kind = "slack"
default_rep = "alice"
base_url = "SANDBOX"
telegram_bot_token = "123456:bench-bot-token"
[notify.reps.alice]
name = "Alice"
slack_webhook_url = "https://hooks.slack.com/services/T000/B000/alice"
telegram_chat_id = "1001"
[crm]
base_url = "SANDBOX"
client_id = "tidio-client-id"
client_secret = "tidio-client-secret"
[fulfillment]
base_url = "SANDBOX"
app_key = "mabang-app-key"
app_secret = "mabang-app-secret"
callback_secret = "fulfillment-callback-secret"
[shopify]
shop = "acme.myshopify.com"
access_token = "shpat_bench_token"
api_version = "2025-07"
base_url = "SANDBOX"
webhook_secret = "shopify-webhook-secret"
`

func startServices() (*services, error) {
	cfg, err := config.Load("", false, nil, nil)
	if err != nil {
		return nil, err
	}
	cfg.Notify.TelegramBotToken = "123456:bench-bot-token"
	cfg.CRM.ClientID, cfg.CRM.ClientSecret = "tidio-client-id", "tidio-client-secret"
	cfg.Fulfill.AppKey, cfg.Fulfill.AppSecret, cfg.Fulfill.CallbackSecret = "mabang-app-key", "mabang-app-secret", "fulfillment-callback-secret"
	cfg.Shopify.Shop, cfg.Shopify.AccessToken, cfg.Shopify.APIVersion, cfg.Shopify.WebhookSecret = "acme.myshopify.com", "shpat_bench_token", "2025-07", "shopify-webhook-secret"
	s := &services{sb: sandbox.New(cfg)}
	h := s.sb.Handler()
	s.httpSrv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.calls.Add(1)
			h.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.httpURL = "http://" + hl.Addr().String()
	go func() { _ = s.httpSrv.Serve(hl) }()

	sl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = s.httpSrv.Close()
		return nil, err
	}
	s.smtpPort = sl.Addr().(*net.TCPAddr).Port
	s.smtpSrv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &sinkSession{s: s}, nil }))
	s.smtpSrv.Domain = "localhost"
	s.smtpSrv.ReadTimeout = time.Minute
	s.smtpSrv.WriteTimeout = time.Minute
	s.smtpSrv.MaxMessageBytes = 8 << 20
	s.smtpSrv.ErrorLog = log.New(io.Discard, "", 0)
	go func() { _ = s.smtpSrv.Serve(sl) }()
	return s, nil
}

// slow makes every service answer after d (0: at once).
func (s *services) slow(d time.Duration) {
	s.sb.ClearFaults()
	if d > 0 {
		for _, svc := range s.sb.Services() {
			s.sb.AddFault(sandbox.Fault{Service: svc, Latency: d})
		}
	}
	s.smtpWait.Store(int64(d))
}

func (s *services) close() {
	_ = s.httpSrv.Close()
	_ = s.smtpSrv.Close()
}

// sinkSession accepts every message, after the configured wait.
type sinkSession struct{ s *services }

func (ss *sinkSession) Mail(string, *smtp.MailOptions) error {
	if d := time.Duration(ss.s.smtpWait.Load()); d > 0 {
		time.Sleep(d)
	}
	return nil
}
func (ss *sinkSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (ss *sinkSession) Data(r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	ss.s.mails.Add(1)
	return err
}
func (ss *sinkSession) Reset()        {}
func (ss *sinkSession) Logout() error { return nil }

// --- errand as a user runs it: bin/errand serve / worker ----------------------

const benchToken = "bench-api-token-0123456789"

// errandEnv is one run of bin/errand processes with their own config file and
// database in a fresh directory.
type errandEnv struct {
	dir    string
	config string
	base   string
	procs  []*proc
}

type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// newEnv writes a config for the bench Redis (every service pointed at the
// fakes when svc is not nil) and starts `errand serve` and/or `errand worker`.
func (b *bench) newEnv(name string, svc *services, serve, worker bool, workerArgs ...string) (*errandEnv, error) {
	dir := filepath.Join(b.workDir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	e := &errandEnv{dir: dir, config: filepath.Join(dir, "config.toml"), base: "http://" + httpAddr}
	smtpPort := 1
	// A worker builds the handlers of every job on its queues at start and
	// stops when a service's settings are missing, so even a worker that only
	// drains no-op jobs gets them: pointed nowhere, as no job calls them.
	extra := strings.ReplaceAll(servicesTOML, "SANDBOX", "http://127.0.0.1:1")
	if svc != nil {
		smtpPort = svc.smtpPort
		extra = strings.ReplaceAll(servicesTOML, "SANDBOX", svc.httpURL)
	}
	dbURL, err := b.databaseURL(dir)
	if err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`
[redis]
addr = %q
[http]
addr = %q
public_url = %q
[database]
url = %q
[worker]
shutdown_timeout = "5s"
[smtp]
host = "127.0.0.1"
port = %d
timeout = "15s"
[api]
tokens = [%q]
[log]
level = %q
`, b.redisAddr, httpAddr, e.base, dbURL, smtpPort, benchToken, b.errandLogLevel) + extra
	if err := os.WriteFile(e.config, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	if serve {
		if err := e.start(b.errandBin, "serve"); err != nil {
			e.stop()
			return nil, err
		}
		if err := e.waitHealthy(30 * time.Second); err != nil {
			e.stop()
			return nil, err
		}
	}
	if worker {
		if err := e.start(b.errandBin, "worker", workerArgs...); err != nil {
			e.stop()
			return nil, err
		}
		if err := e.waitLog("worker", "worker started", 30*time.Second); err != nil {
			e.stop()
			return nil, err
		}
	}
	return e, nil
}

func (e *errandEnv) start(bin, cmdName string, args ...string) error {
	logPath := filepath.Join(e.dir, cmdName+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, append([]string{cmdName, "--config", e.config}, args...)...)
	cmd.Dir = e.dir
	cmd.SysProcAttr = sysProcAttr(syscall.SIGTERM)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start errand %s: %w", cmdName, err)
	}
	p := &proc{name: cmdName, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); f.Close(); close(p.done) }()
	e.procs = append(e.procs, p)
	return nil
}

func (e *errandEnv) proc(name string) *proc {
	for _, p := range e.procs {
		if p.name == name {
			return p
		}
	}
	return nil
}

func (e *errandEnv) waitHealthy(timeout time.Duration) error {
	p := e.proc("serve")
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("errand serve exited; log %s:\n%s", p.log, tail(p.log))
		default:
		}
		resp, err := http.Get(e.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("errand serve did not answer /healthz within %s; log %s:\n%s", timeout, p.log, tail(p.log))
}

func (e *errandEnv) waitLog(name, text string, timeout time.Duration) error {
	p := e.proc(name)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(p.log)
		if bytes.Contains(b, []byte(text)) {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("errand %s exited; log %s:\n%s", name, p.log, tail(p.log))
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("errand %s did not log %q within %s; log %s:\n%s", name, text, timeout, p.log, tail(p.log))
}

// stop sends SIGTERM to every process, newest first, and kills what has not
// exited 20 s later.
func (e *errandEnv) stop() {
	for i := len(e.procs) - 1; i >= 0; i-- {
		p := e.procs[i]
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	e.procs = nil
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// --- load generation -----------------------------------------------------------

// loadStats is one load run: the latencies of the operations that started in
// the measured window and succeeded, and what failed.
type loadStats struct {
	Window   time.Duration
	Lat      []time.Duration
	Failed   int64
	FirstErr string
}

func (l loadStats) rate() float64 { return float64(len(l.Lat)) / l.Window.Seconds() }

// runLoad runs op from conc goroutines, closed loop: warmup (not recorded),
// then window (recorded). Every op must bound its own duration.
func runLoad(conc int, warmup, window time.Duration, op func(seq int64) error) loadStats {
	var seq atomic.Int64
	from := time.Now().Add(warmup)
	end := from.Add(window)
	var mu sync.Mutex
	st := loadStats{Window: window}
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			var failed int64
			var firstErr error
			for {
				t0 := time.Now()
				if !t0.Before(end) {
					break
				}
				err := op(seq.Add(1))
				d := time.Since(t0)
				if t0.Before(from) {
					continue
				}
				if err != nil {
					failed++
					if firstErr == nil {
						firstErr = err
					}
					continue
				}
				lat = append(lat, d)
			}
			mu.Lock()
			st.Lat = append(st.Lat, lat...)
			st.Failed += failed
			if firstErr != nil && st.FirstErr == "" {
				st.FirstErr = firstErr.Error()
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return st
}

func httpClient(conc int) *http.Client {
	return &http.Client{
		Timeout: 15 * time.Second,
		Transport: &http.Transport{
			Proxy:               nil,
			MaxIdleConns:        conc,
			MaxIdleConnsPerHost: conc,
			MaxConnsPerHost:     conc,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		},
	}
}

// post sends body and checks the status.
func post(ctx context.Context, c *http.Client, url string, body []byte, want int, header ...string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return fmt.Errorf("%s: HTTP %d, want %d: %s", url, resp.StatusCode, want, strings.TrimSpace(string(msg)))
	}
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}
