package main

import (
	"context"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/rdb"
)

// A service held after it throttled us shows, while held, in `errand
// queues` (held until when), in /metrics (the hold's end as a Unix time) and
// on the dashboard (a banner over asynqmon, in a real Chromium); once the
// hold has passed, all three show it not held.
func TestHeldServiceIsVisible(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed; scripts/test.sh installs it (apt-get install chromium)")
	}
	s := startStack(t, stackOptions{noWorker: true, dashboardPW: "dash-secret", toml: "\n[limits.slack]\nrate = \"5/1s\"\nburst = 2\n"})
	ctx := context.Background()
	dashboard := func() string {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		url := strings.Replace(s.base, "http://", "http://admin:dash-secret@", 1) + "/monitoring/"
		dom, err := exec.CommandContext(cctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
			"--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic", "--user-data-dir="+t.TempDir(),
			"--window-size=1400,900", "--virtual-time-budget=5000", "--dump-dom", url).Output()
		if err != nil {
			t.Fatalf("chromium --dump-dom: %v", err)
		}
		return string(dom)
	}
	gauge := regexp.MustCompile(`(?m)^errand_service_held_until_timestamp_seconds\{service="slack"\} (\S+)$`)
	heldMetric := func() float64 {
		t.Helper()
		code, body := s.get("/metrics")
		m := gauge.FindStringSubmatch(body)
		if code != 200 || m == nil {
			t.Fatalf("/metrics: %d, no slack hold gauge", code)
		}
		v, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	// Before any hold: slack shows with its rate, not held.
	if out, err := s.cli("queues"); err != nil || !regexp.MustCompile(`slack\s+5/1s burst 2\s+not held`).MatchString(out) {
		t.Fatalf("errand queues before the hold: %v\n%s", err, out)
	}
	// Slack throttles us: every worker holds its jobs for 20 s.
	until, err := rdb.New(s.redis.Client()).LimitHold(ctx, "slack", 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.cli("queues")
	want := "held until " + until.Format("15:04:05 MST") + " (in "
	if err != nil || !regexp.MustCompile(`slack\s+5/1s burst 2\s+`+regexp.QuoteMeta(want)).MatchString(out) {
		t.Fatalf("errand queues while slack is held: %v\n%s\nwant %q", err, out, want)
	}
	t.Logf("errand queues while held:\n%s", out)
	if got := heldMetric(); got != float64(until.UnixMilli())/1000 {
		t.Fatalf("held-until gauge %v, want %v", got, float64(until.UnixMilli())/1000)
	}
	page := dashboard()
	banner := "Service <strong>slack</strong> paused: held until " + until.Format("15:04:05 MST")
	if !strings.Contains(page, banner) || !strings.Contains(page, "Queues") {
		t.Fatalf("the dashboard does not show slack held (%q) over asynqmon's queues:\n%.3000s", banner, page)
	}
	// The hold passes.
	time.Sleep(time.Until(until) + 500*time.Millisecond)
	if out, err := s.cli("queues"); err != nil || !regexp.MustCompile(`slack\s+5/1s burst 2\s+not held`).MatchString(out) || strings.Contains(out, "held until") {
		t.Fatalf("errand queues after the hold: %v\n%s", err, out)
	}
	if got := heldMetric(); got != 0 {
		t.Fatalf("held-until gauge after the hold: %v, want 0", got)
	}
	if page := dashboard(); strings.Contains(page, "paused: held") || !strings.Contains(page, `id="errand-services"`) || !strings.Contains(page, "Queues") {
		t.Fatalf("the dashboard after the hold:\n%.3000s", page)
	}
}
