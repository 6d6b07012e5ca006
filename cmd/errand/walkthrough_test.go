package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/redistest"
	"github.com/errandhq/errand/internal/smtptest"
)

// README's two walk-throughs, run as written: the shell blocks are taken
// from README.md and run by bash in a directory laid out as scripts/dev.sh
// leaves the checkout (bin/errand, .dev/errand.env with dev.sh's own
// settings, read from dev.sh), against `errand serve`, `errand worker` and
// `errand sandbox` started as dev.sh starts them. Only the addresses change
// (every test has its own ports) and Mailpit is a stand-in that takes its
// chaos API onto the test's SMTP server. What README says a command prints
// is checked against what it printed, "…" standing for anything; what it
// says happens is checked where it happens.
func TestREADMEWalkthroughs(t *testing.T) {
	t.Parallel()
	bin := errandBinary(t)
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	first := readmeBlocks(t, string(readme), "## Walk-through: registration", "## Walk-through: every side effect")
	second := readmeBlocks(t, string(readme), "## Walk-through: every side effect", "## How it works")
	if len(first) != 3 || len(second) != 5 {
		t.Fatalf("README's walk-throughs have %d and %d shell blocks; this test knows 3 and 5", len(first), len(second))
	}

	w := startWalk(t, bin)
	// The addresses README's table and dev.sh give are there (Mailpit's
	// aside: the stand-in has only its chaos API).
	urls := regexp.MustCompile(`(?m)^\| [^|]+ \| (http://localhost:\d+/\S*) \|$`).FindAllStringSubmatch(string(readme), -1)
	if len(urls) < 4 {
		t.Fatalf("README's URL table: %v", urls)
	}
	for _, u := range append(urls, []string{"", w.devSandboxURL}) {
		if strings.Contains(u[1], ":8025") {
			continue
		}
		resp, err := http.Get(w.replace.Replace(u[1]))
		if err != nil || resp.StatusCode == http.StatusNotFound || resp.StatusCode >= 500 { // GET /api/users is a 405
			t.Fatalf("%s: %v %v", u[1], resp, err)
		}
		resp.Body.Close()
	}
	run := func(block string) string {
		t.Helper()
		out := w.sh(block)
		t.Logf("$ %s\n%s", strings.ReplaceAll(block, "\n", "\n$ "), out)
		return out
	}

	// 1. Register a user: the answer at once, as README shows it.
	sent := time.Now()
	w.expectOutput(first[0], run(first[0]))
	// 2. The welcome email 5 s later, HTML and text.
	ada := w.waitMail("ada@example.com", 30*time.Second)
	if d := ada.ReceivedAt.Sub(sent); d < 5*time.Second || ada.HTML == "" || ada.Text == "" {
		t.Fatalf("the welcome email %s after the registration, html %d bytes, text %d bytes", d, len(ada.HTML), len(ada.Text))
	}
	// 3. SMTP broken: three attempts, then "job failed for good", the
	// escalation logged as not sent. tail -f is the reader's part.
	run(strings.Replace(first[1], "tail -f .dev/logs/worker.log", "", 1))
	w.waitLog("worker", 150*time.Second, `msg="job failed for good" attempt=3 `)
	w.waitLog("worker", 30*time.Second, "escalation email not sent; will retry")
	for n, want := range []string{"attempt=1 ", "attempt=2 "} {
		if !strings.Contains(w.log("worker"), `msg="job failed, will retry" `) || !strings.Contains(w.log("worker"), want) {
			t.Fatalf("attempt %d not in the worker log", n+1)
		}
	}
	// The job is in the failed list README names, with its attempts used.
	if out := w.sh("bin/errand failed list"); !strings.Contains(out, "user:welcome_email") || !strings.Contains(out, "3/3") {
		t.Fatalf("bin/errand failed list:\n%s", out)
	}
	if out := w.sh("bin/errand queues"); !strings.Contains(out, "emails") {
		t.Fatalf("bin/errand queues:\n%s", out)
	}
	// 4. Mended: the escalation to developers@errand.local with 3 of 3; the
	// failed job queued again and delivered.
	out := run(first[2])
	if !strings.Contains(out, "1 failed job(s) queued again.") {
		t.Fatalf("failed retry --all printed %q", out)
	}
	esc := w.waitMail("developers@errand.local", 30*time.Second)
	if !strings.Contains(esc.Text, "3 of 3") || !strings.Contains(esc.Text, "user:welcome_email") {
		t.Fatalf("the escalation:\n%s", esc.Text)
	}
	w.waitMail("grace@example.com", 30*time.Second)

	// The sandbox walk: loading .dev/errand.env, then each block.
	run(second[0])
	// 1. The first registration told Alice on Slack and created the contact.
	for _, want := range []string{"POST /services/T0DEV/B0DEV/alice", "GET /contacts", "POST /contacts"} {
		w.waitCall(want, "")
	}
	// 2. The profile change sends only what changed.
	run(second[1])
	w.waitCall("PATCH /contacts/", `{"last_name":"King"}`)
	// 3. A paid order, then the same again: a duplicate.
	w.expectOutput(second[2], run(second[2]))
	w.waitCall("POST /api/v2", `"platformOrderId":"1001"`)
	again := regexp.MustCompile("Sending it again answers `([^`]*)`").FindStringSubmatch(string(readme))
	if out := run(second[2]); again == nil || !strings.Contains(out, again[1]) {
		t.Fatalf("the same order again: %s; README says %v", out, again)
	}
	// 4. The shipment: Shopify's fulfillmentOrders, then fulfillmentCreate.
	run(second[3])
	w.waitCall("POST /admin/api/", "fulfillmentOrders")
	w.waitCall("POST /admin/api/", "fulfillmentCreate")
	// 5. Every fault README lists is taken (201), and cleared.
	out = run(second[4])
	if n := strings.Count(out, `"service":`); n != strings.Count(second[4], "-X POST $S") {
		t.Fatalf("the sandbox took %d of README's faults:\n%s", n, out)
	}
}

// readmeBlocks returns the ```sh blocks between the headings from and to.
func readmeBlocks(t *testing.T, readme, from, to string) []string {
	t.Helper()
	i, j := strings.Index(readme, from), strings.Index(readme, to)
	if i < 0 || j < i {
		t.Fatalf("README has no section %q before %q", from, to)
	}
	var blocks []string
	for _, m := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(readme[i:j], -1) {
		var lines []string
		for _, l := range strings.Split(m[1], "\n") {
			lines = append(lines, strings.TrimPrefix(l, "   "))
		}
		blocks = append(blocks, strings.TrimSpace(strings.Join(lines, "\n")))
	}
	return blocks
}

// walk is a checkout after scripts/dev.sh: its processes and their logs.
type walk struct {
	t       *testing.T
	dir     string
	smtp    *smtptest.Server
	replace *strings.Replacer // README's addresses → this walk's
	sandbox string
	// devSandboxURL is the sandbox's address as dev.sh prints it, in
	// README's form.
	devSandboxURL string
	mu            sync.Mutex
	logs          map[string]*syncBuffer
}

func startWalk(t *testing.T, bin string) *walk {
	rd := redistest.Start(t)
	w := &walk{t: t, dir: t.TempDir(), smtp: smtptest.Start(t), logs: map[string]*syncBuffer{}}
	// Mailpit's chaos API, onto the test's SMTP server.
	chaos := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var c struct {
			Sender, Recipient struct{ ErrorCode int }
		}
		if r.Method != http.MethodPut || r.URL.Path != "/api/v1/chaos" || json.NewDecoder(r.Body).Decode(&c) != nil {
			http.Error(rw, "not Mailpit's chaos API", http.StatusBadRequest)
			return
		}
		switch code := max(c.Sender.ErrorCode, c.Recipient.ErrorCode); {
		case code >= 500:
			w.smtp.RejectPermanently(code, "chaos")
		case code >= 400:
			w.smtp.RejectTemporarily(code, "chaos")
		default:
			w.smtp.Accept()
		}
		_, _ = rw.Write([]byte(`{"Sender":{},"Recipient":{},"Authentication":{}}`))
	}))
	t.Cleanup(chaos.Close)
	serve, sandbox := freeAddr(t), freeAddr(t)
	w.sandbox = "http://" + sandbox
	w.replace = strings.NewReplacer("localhost:8080", serve, "localhost:8025", strings.TrimPrefix(chaos.URL, "http://"),
		"localhost:8090", sandbox)

	// dev.sh's settings, from dev.sh itself, for this walk's ports.
	devsh, err := os.ReadFile("../../scripts/dev.sh")
	if err != nil {
		t.Fatal(err)
	}
	printed := regexp.MustCompile(`echo "  Sandbox +\$sandbox_url(\S*)`).FindStringSubmatch(string(devsh))
	if printed == nil {
		t.Fatal("scripts/dev.sh prints no Sandbox line")
	}
	w.devSandboxURL = "http://localhost:8090" + printed[1]
	var arrays []string
	for _, re := range []string{`(?m)^API_TOKEN=.*$`, `(?ms)^errand_env=\(\n.*?^\)$`, `(?ms)^\terrand_env\+=\(\n.*?^\t\)$`} {
		m := regexp.MustCompile(re).FindString(string(devsh))
		if m == "" {
			t.Fatalf("scripts/dev.sh has no %s", re)
		}
		arrays = append(arrays, m)
	}
	_, port, _ := strings.Cut(w.smtp.Addr(), ":")
	script := fmt.Sprintf("set -eu\nREDIS_PORT=%s\nSMTP_PORT=%s\nsandbox_url=%s\n%s\nprintf '%%s\\n' \"${errand_env[@]}\"\n",
		strings.TrimPrefix(rd.Addr(), "127.0.0.1:"), port, w.sandbox, strings.Join(arrays, "\n"))
	out, err := exec.Command("bash", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("dev.sh's settings: %v\n%s", err, out)
	}
	env := strings.Fields(string(out))
	// The test's Redis has a password; serve listens on this walk's port.
	env = append(env, "ERRAND_REDIS__PASSWORD="+rd.Password(), "ERRAND_HTTP__ADDR="+serve, "ERRAND_HTTP__PUBLIC_URL=http://"+serve)
	if err := os.MkdirAll(filepath.Join(w.dir, ".dev", "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(w.dir, ".dev", "errand.env"), []byte(strings.Join(env, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(w.dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(bin, filepath.Join(w.dir, "bin", "errand")); err != nil {
		t.Fatal(err)
	}
	// As dev.sh: the sandbox, the database migrated, serve, the worker.
	start := func(name string, args ...string) {
		cmd := exec.Command(bin, args...)
		cmd.Dir, cmd.Env = w.dir, append(os.Environ(), env...)
		log := &syncBuffer{}
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		w.mu.Lock()
		w.logs[name] = log
		w.mu.Unlock()
		t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("%s log:\n%s", name, log.String())
			}
		})
	}
	start("sandbox", "sandbox", "--addr", sandbox)
	w.waitLog("sandbox", 30*time.Second, "sandbox serving")
	if out := w.sh("bin/errand migrate"); !strings.Contains(out, "applied migrations") {
		t.Fatalf("errand migrate: %s", out)
	}
	start("serve", "serve")
	w.waitLog("serve", 30*time.Second, "msg=serving")
	start("worker", "worker")
	w.waitLog("worker", 30*time.Second, "worker started")
	return w
}

// sh runs a README block with bash in the checkout, README's addresses
// turned into this walk's, with .dev/errand.env loaded as README says.
func (w *walk) sh(block string) string {
	w.t.Helper()
	cmd := exec.Command("bash", "-c", "set -a; . .dev/errand.env; set +a\n"+w.replace.Replace(block))
	cmd.Dir = w.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		w.t.Fatalf("README's\n%s\nfailed: %v\n%s", block, err, out)
	}
	return string(out)
}

// expectOutput checks out against each "# …" line README shows after a
// command in block: the same text, "…" standing for anything.
func (w *walk) expectOutput(block, out string) {
	w.t.Helper()
	for _, l := range strings.Split(block, "\n") {
		want, ok := strings.CutPrefix(strings.TrimSpace(l), "# ")
		if !ok {
			continue
		}
		parts := strings.Split(want, "…")
		for i := range parts {
			parts[i] = regexp.QuoteMeta(parts[i])
		}
		if !regexp.MustCompile(strings.Join(parts, ".*")).MatchString(out) {
			w.t.Fatalf("README says it prints\n %s\nit printed\n %s", want, out)
		}
	}
}

func (w *walk) log(name string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.logs[name].String()
}

func (w *walk) waitLog(name string, timeout time.Duration, want string) {
	w.t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(w.log(name), want) {
		if time.Now().After(deadline) {
			w.t.Fatalf("no %q in the %s log after %s", want, name, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (w *walk) waitMail(to string, timeout time.Duration) smtptest.Message {
	w.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, m := range w.smtp.Messages() {
			for _, rcpt := range m.To {
				if rcpt == to {
					return m
				}
			}
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("no email to %s after %s", to, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitCall waits until the sandbox lists a call starting with call ("POST
// /contacts") whose body contains body.
func (w *walk) waitCall(call, body string) {
	w.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(w.sandbox + "/_sandbox/calls")
		if err == nil {
			var calls []struct{ Method, Path, Request string }
			_ = json.NewDecoder(resp.Body).Decode(&calls)
			resp.Body.Close()
			for _, c := range calls {
				if strings.HasPrefix(c.Method+" "+c.Path, call) && strings.Contains(c.Request, body) {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("the sandbox shows no %s with %s", call, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
