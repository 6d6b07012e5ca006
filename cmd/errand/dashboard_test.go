package main

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDashboardRequiresCredentials(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{noWorker: true, dashboardPW: "dash-secret"})
	get := func(user, pass string) int {
		code, _, _ := s.dashboardRequest("GET", "/monitoring/", "", user, pass)
		return code
	}
	if got := get("", ""); got != http.StatusUnauthorized {
		t.Fatalf("no credentials: %d, want 401", got)
	}
	if got := get("admin", "wrong"); got != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d, want 401", got)
	}
	if got := get("someone", "dash-secret"); got != http.StatusUnauthorized {
		t.Fatalf("wrong user: %d, want 401", got)
	}
	if got := get("admin", "dash-secret"); got != http.StatusOK {
		t.Fatalf("right credentials: %d, want 200", got)
	}
	// The dashboard's API is behind the same guard.
	if code, _ := s.get("/monitoring/api/queues"); code != http.StatusUnauthorized {
		t.Fatalf("dashboard API without credentials: %d", code)
	}
}

// The dashboard, rendered in a real headless Chromium, shows errand's queues.
func TestDashboardRendersQueuesInChromium(t *testing.T) {
	t.Parallel()
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed; scripts/test.sh installs it (apt-get install chromium)")
	}
	s := startStack(t, stackOptions{noWorker: true, dashboardPW: "dash-secret"})
	for _, typ := range []string{"ops:noop", "user:welcome_email"} {
		payload := `{}`
		if typ == "user:welcome_email" {
			payload = `{"user_id":1,"email":"ada@shop.test","first_name":"Ada"}`
		}
		s.enqueue(typ, payload)
	}
	shot := filepath.Join(t.TempDir(), "dashboard.png")
	url := strings.Replace(s.base, "http://", "http://admin:dash-secret@", 1) + "/monitoring/"
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	common := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
		"--user-data-dir=" + t.TempDir(), "--window-size=1400,900", "--virtual-time-budget=15000",
	}
	dom, err := exec.CommandContext(ctx, chromium, append(common, "--dump-dom", url)...).Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom: %v", err)
	}
	page := string(dom)
	for _, want := range []string{"emails", "default", "Queues", "Memory usage", "Latency"} {
		if !strings.Contains(page, want) {
			t.Errorf("the rendered dashboard does not show %q", want)
		}
	}
	if out, err := exec.CommandContext(ctx, chromium, append(common, "--screenshot="+shot, url)...).CombinedOutput(); err != nil {
		t.Fatalf("chromium --screenshot: %v\n%s", err, out)
	}
	st, err := os.Stat(shot)
	if err != nil || st.Size() < 10_000 {
		t.Fatalf("screenshot %s missing or blank (%v)", shot, err)
	}
	t.Logf("dashboard screenshot: %s (%d bytes)", shot, st.Size())
	// ERRAND_TEST_ARTIFACTS keeps the screenshot after the test, to look at.
	if dir := os.Getenv("ERRAND_TEST_ARTIFACTS"); dir != "" {
		if png, err := os.ReadFile(shot); err == nil {
			_ = os.MkdirAll(dir, 0o755)
			_ = os.WriteFile(filepath.Join(dir, "dashboard.png"), png, 0o644)
		}
	}
	if t.Failed() {
		t.Logf("rendered page:\n%.3000s", page)
	}
}
