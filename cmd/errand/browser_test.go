package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// browser is a headless Chromium driven over the DevTools protocol on a pipe
// (--remote-debugging-pipe: commands on its fd 3, answers on its fd 4). The
// DevTools protocol reports every request the page makes. Anything not for
// loopback goes to a local proxy that records and refuses it, so nothing
// leaves the machine: Chromium's own calls home (component updates,
// sign-in), which no flag fully silences, end there too. They carry no
// Referer; a plain-HTTP request of the page's would, and fails the test.
type browser struct {
	t       *testing.T
	session string
	out     *os.File // our end of the browser's fd 3

	mu      sync.Mutex
	nextID  int
	waiting map[int]chan cdpReply
	// What the page did: every request's URL, every console error and
	// uncaught exception; and every request the proxy refused.
	requests, consoleErrors, offsite []string
}

type cdpReply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// startBrowser starts Chromium (the flags are those of
// TestDashboardRendersQueuesInChromium) with header on every request of its
// page, and stops it when the test ends.
func startBrowser(t *testing.T, header map[string]string) *browser {
	t.Helper()
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed; scripts/test.sh installs it (apt-get install chromium)")
	}
	b := &browser{t: t, waiting: map[int]chan cdpReply{}}
	proxy := b.startOffsiteRecorder()

	toBrowser, out, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	in, fromBrowser, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, chromium,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
		"--user-data-dir="+t.TempDir(), "--window-size=1400,900",
		// Chromium's own calls home (updates, sign-in, autofill, safe
		// browsing) are not the page's: switched off, so the proxy sees
		// only what the page asks for.
		"--disable-default-apps", "--disable-extensions", "--disable-client-side-phishing-detection",
		"--disable-domain-reliability", "--no-pings", "--metrics-recording-only", "--password-store=basic",
		"--use-mock-keychain", "--allow-browser-signin=false", "--no-default-browser-check",
		"--disable-component-extensions-with-background-pages", "--enable-automation", "--disable-field-trial-config",
		"--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication,"+
			"CertificateTransparencyComponentUpdater,DialMediaRouteProvider,SafeBrowsing,NetworkTimeServiceQuerying",
		"--remote-debugging-pipe", "--proxy-server=http://"+proxy, "about:blank")
	cmd.ExtraFiles = []*os.File{toBrowser, fromBrowser}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	_ = toBrowser.Close()
	_ = fromBrowser.Close()
	b.out = out
	done := make(chan struct{})
	go b.read(in, done)
	t.Cleanup(func() {
		_ = out.Close() // a closed pipe makes Chromium exit
		select {
		case <-done:
		case <-time.After(10 * time.Second):
		}
		cancel()
		_ = cmd.Wait()
		_ = in.Close()
		if t.Failed() {
			t.Logf("chromium's stderr:\n%.4000s", stderr.String())
		}
	})

	var target struct{ TargetID string }
	b.call("", "Target.createTarget", map[string]any{"url": "about:blank"}, &target)
	var attached struct{ SessionID string }
	b.call("", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &attached)
	b.session = attached.SessionID
	for _, domain := range []string{"Network", "Runtime", "Log", "Page"} {
		b.call(b.session, domain+".enable", map[string]any{}, nil)
	}
	if len(header) > 0 {
		b.call(b.session, "Network.setExtraHTTPHeaders", map[string]any{"headers": header}, nil)
	}
	return b
}

// startOffsiteRecorder serves as the browser's proxy: it records each
// request (a CONNECT names the host) and refuses it.
func (b *browser) startOffsiteRecorder() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := r.URL.String()
		if r.Method == http.MethodConnect {
			target = "CONNECT " + r.Host
		}
		if ref := r.Header.Get("Referer"); ref != "" {
			target += " (Referer: " + ref + ")"
		}
		b.mu.Lock()
		b.offsite = append(b.offsite, target)
		b.mu.Unlock()
		http.Error(w, "offsite request refused by the test", http.StatusForbidden)
	})}
	go func() { _ = srv.Serve(l) }()
	b.t.Cleanup(func() { _ = srv.Close() })
	return l.Addr().String()
}

// read dispatches the browser's messages: answers to their callers, events
// into the record.
func (b *browser) read(in io.Reader, done chan struct{}) {
	defer close(done)
	r := bufio.NewReader(in)
	for {
		msg, err := r.ReadBytes(0)
		if err != nil {
			return
		}
		var m struct {
			ID     int             `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
			cdpReply
		}
		if json.Unmarshal(msg[:len(msg)-1], &m) != nil {
			continue
		}
		b.mu.Lock()
		if m.ID != 0 {
			if c, ok := b.waiting[m.ID]; ok {
				c <- m.cdpReply
				delete(b.waiting, m.ID)
			}
		} else {
			b.event(m.Method, m.Params)
		}
		b.mu.Unlock()
	}
}

// event records what the test checks of an event. b.mu is held.
func (b *browser) event(method string, params json.RawMessage) {
	var p struct {
		Request struct{ URL string }
		Type    string
		Args    []struct {
			Value       any
			Description string
		}
		ExceptionDetails struct {
			Text      string
			Exception struct{ Description string }
		}
		Entry struct{ Level, Text, URL string }
	}
	_ = json.Unmarshal(params, &p)
	switch method {
	case "Network.requestWillBeSent":
		b.requests = append(b.requests, p.Request.URL)
	case "Runtime.consoleAPICalled":
		if p.Type == "error" || p.Type == "assert" {
			var parts []string
			for _, a := range p.Args {
				parts = append(parts, fmt.Sprint(a.Value, a.Description))
			}
			b.consoleErrors = append(b.consoleErrors, "console."+p.Type+": "+strings.Join(parts, " "))
		}
	case "Runtime.exceptionThrown":
		b.consoleErrors = append(b.consoleErrors, "exception: "+p.ExceptionDetails.Text+" "+p.ExceptionDetails.Exception.Description)
	case "Log.entryAdded":
		if p.Entry.Level == "error" {
			b.consoleErrors = append(b.consoleErrors, "log: "+p.Entry.Text+" "+p.Entry.URL)
		}
	}
}

// call sends a DevTools command (on session, or to the browser when "") and
// decodes its result into result, if not nil.
func (b *browser) call(session, method string, params any, result any) {
	b.t.Helper()
	b.mu.Lock()
	b.nextID++
	id := b.nextID
	c := make(chan cdpReply, 1)
	b.waiting[id] = c
	b.mu.Unlock()
	msg := map[string]any{"id": id, "method": method, "params": params}
	if session != "" {
		msg["sessionId"] = session
	}
	data, _ := json.Marshal(msg)
	if _, err := b.out.Write(append(data, 0)); err != nil {
		b.t.Fatalf("devtools %s: %v", method, err)
	}
	select {
	case r := <-c:
		if r.Error != nil {
			b.t.Fatalf("devtools %s: %s", method, r.Error.Message)
		}
		if result != nil {
			if err := json.Unmarshal(r.Result, result); err != nil {
				b.t.Fatalf("devtools %s: %v", method, err)
			}
		}
	case <-time.After(60 * time.Second):
		b.t.Fatalf("devtools %s: no answer within 60 s", method)
	}
}

// eval returns the value of a JavaScript expression in the page.
func (b *browser) eval(expr string) any {
	b.t.Helper()
	var r struct {
		Result struct{ Value any }
	}
	b.call(b.session, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &r)
	return r.Result.Value
}

// open navigates to u and waits, up to 30 s, until the page's text shows
// every one of want; it returns that text, its blanks each made one space.
func (b *browser) open(u string, want ...string) string {
	b.t.Helper()
	b.call(b.session, "Page.navigate", map[string]any{"url": u}, nil)
	var text string
	deadline := time.Now().Add(30 * time.Second)
	for {
		text, _ = b.eval("document.body ? document.body.innerText : ''").(string)
		// Labels and values are separate elements, one per line.
		text = strings.Join(strings.Fields(text), " ")
		missing := ""
		for _, w := range want {
			if !strings.Contains(text, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return text
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%s never showed %q; it shows:\n%.3000s", u, missing, text)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// screenshot saves the page as name (a PNG) in dir, and in
// $ERRAND_TEST_ARTIFACTS when that is set, and returns its path.
func (b *browser) screenshot(dir, name string) string {
	b.t.Helper()
	var r struct{ Data string }
	b.call(b.session, "Page.captureScreenshot", map[string]any{"format": "png"}, &r)
	png, err := base64.StdEncoding.DecodeString(r.Data)
	if err != nil || len(png) < 10_000 {
		b.t.Fatalf("screenshot %s: %d bytes (%v): blank?", name, len(png), err)
	}
	shot := filepath.Join(dir, name)
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	if keep := os.Getenv("ERRAND_TEST_ARTIFACTS"); keep != "" {
		_ = os.MkdirAll(keep, 0o755)
		_ = os.WriteFile(filepath.Join(keep, name), png, 0o644)
	}
	return shot
}

// checkStayedHome fails the test for any request the page made to a host
// other than loopback, any request that reached the proxy, and any console
// error or uncaught exception.
func (b *browser) checkStayedHome() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.requests) == 0 {
		b.t.Error("the browser recorded no request at all: the check saw nothing")
	}
	for _, r := range b.requests {
		u, err := url.Parse(r)
		if err != nil || strings.HasPrefix(r, "data:") || strings.HasPrefix(r, "about:") {
			continue
		}
		ip := net.ParseIP(u.Hostname())
		if u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
			b.t.Errorf("the page requested %s, off this machine", r)
		}
	}
	for _, r := range b.offsite {
		if strings.Contains(r, "(Referer: ") {
			b.t.Errorf("the page sent a request off this machine (caught by the proxy): %s", r)
		} else {
			b.t.Logf("Chromium's own request, refused by the proxy: %.120s", r)
		}
	}
	for _, e := range b.consoleErrors {
		b.t.Errorf("console error: %s", e)
	}
}
