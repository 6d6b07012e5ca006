package main

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/rdb/sharedlimit"
	"github.com/errandhq/errand/internal/web"
)

// A service held after it throttled us shows, while held, in `errand
// queues` (held until when), in /metrics (the hold's end as a Unix time, and
// the throttled answer counted) and
// on the dashboard (a banner over asynqmon, in a real Chromium); once the
// hold has passed, all three show it not held.
func TestHeldServiceIsVisible(t *testing.T) {
	t.Parallel()
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed; scripts/test.sh installs it (apt-get install chromium)")
	}
	s := startStack(t, stackOptions{noWorker: true, dashboardPW: "dash-secret", toml: "\n[limits.slack]\nrate = \"5/1s\"\nburst = 2\n"})
	ctx := context.Background()
	// dashboard renders the dashboard in Chromium: its DOM, and whether the
	// banner shows at the foot of a screenshot (a DOM can hold what no one
	// sees). With ERRAND_TEST_ARTIFACTS set the screenshot is kept there.
	dashboard := func(shot string) (string, bool) {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		url := strings.Replace(s.base, "http://", "http://admin:dash-secret@", 1) + "/monitoring/"
		args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
			"--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic", "--user-data-dir=" + t.TempDir(),
			"--window-size=1400,900", "--virtual-time-budget=5000"}
		dom, err := exec.CommandContext(cctx, chromium, append(args, "--dump-dom", url)...).Output()
		if err != nil {
			t.Fatalf("chromium --dump-dom: %v", err)
		}
		file := filepath.Join(t.TempDir(), shot)
		if out, err := exec.CommandContext(cctx, chromium, append(args, "--screenshot="+file, url)...).CombinedOutput(); err != nil {
			t.Fatalf("chromium --screenshot: %v\n%s", err, out)
		}
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if dir := os.Getenv("ERRAND_TEST_ARTIFACTS"); dir != "" {
			_ = os.MkdirAll(dir, 0o755)
			_ = os.WriteFile(filepath.Join(dir, shot), raw, 0o644)
		}
		img, err := png.Decode(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("screenshot %s: %v", shot, err)
		}
		b := img.Bounds()
		r, g, bl, _ := img.At(b.Min.X+b.Dx()/2, b.Max.Y-8).RGBA()
		want, _ := strconv.ParseUint(strings.TrimPrefix(web.BannerColor, "#"), 16, 32)
		shown := r>>8 == uint32(want>>16) && g>>8 == uint32(want>>8&0xff) && bl>>8 == uint32(want&0xff)
		return string(dom), shown
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
	until, err := sharedlimit.New(s.redis.Client()).LimitHold(ctx, "slack", 20*time.Second)
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
	if _, body := s.get("/metrics"); !strings.Contains(body, `errand_service_throttled_total{service="slack"} 1`+"\n") {
		t.Fatalf("/metrics does not count slack's one throttled answer:\n%s", body)
	}
	page, shown := dashboard("dashboard-held.png")
	banner := "Service <strong>slack</strong> paused: held until " + until.Format("15:04:05 MST")
	if !strings.Contains(page, banner) || !strings.Contains(page, "Queues") || !shown {
		t.Fatalf("the dashboard does not show slack held (%q; banner in sight: %v) over asynqmon's queues:\n%.3000s", banner, shown, page)
	}
	// The hold passes.
	time.Sleep(time.Until(until) + 500*time.Millisecond)
	if out, err := s.cli("queues"); err != nil || !regexp.MustCompile(`slack\s+5/1s burst 2\s+not held`).MatchString(out) || strings.Contains(out, "held until") {
		t.Fatalf("errand queues after the hold: %v\n%s", err, out)
	}
	if got := heldMetric(); got != 0 {
		t.Fatalf("held-until gauge after the hold: %v, want 0", got)
	}
	if page, shown := dashboard("dashboard-not-held.png"); shown || strings.Contains(page, "paused: held") || !strings.Contains(page, `id="errand-services"`) || !strings.Contains(page, "Queues") {
		t.Fatalf("the dashboard after the hold (banner in sight: %v):\n%.3000s", shown, page)
	}
}
