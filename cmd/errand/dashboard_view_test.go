package main

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The welcome email fails on a 4xx (transient) for @flaky.test: three
// attempts a second apart, then the failed list. Its timeout is set so the
// dashboard's can be told from asynq's (errand gives asynq 5 s more).
const dashboardJobsTOML = `
[jobs."user:welcome_email"]
delay = "0s"
backoff = ["1s"]
timeout = "45s"
` + escalateRetries

// The dashboard, opened in headless Chromium as an operator opens it, loads
// nothing from another host (its fonts are errand's own), logs no console
// error, and says what the CLI says: a job that failed three times shows
// 3/3 attempts, its type's timeout, and a link to its entity's timeline; a
// completed job's result is "none"; a queue's failure rate counts jobs.
func TestDashboardOfflineAndTruthfulInChromium(t *testing.T) {
	s := startStack(t, stackOptions{toml: dashboardJobsTOML, dashboardPW: "dash-secret"})
	s.smtp.RejectRecipients("@flaky.test", 451, "4.3.0 try again later")
	failedID := s.enqueue("user:welcome_email", `{"user_id":1,"email":"ada@flaky.test","first_name":"Ada"}`)
	sentID := s.enqueue("user:welcome_email", `{"user_id":2,"email":"bob@shop.test","first_name":"Bob"}`)
	noopID := s.enqueue("ops:noop", `{}`)
	s.waitDone(sentID)
	s.waitDone(noopID)
	var failed map[string]any
	s.waitFor(30*time.Second, "the flaky welcome email in the failed list", func() bool {
		failed = s.failedJob(failedID)
		return failed != nil
	})
	if failed["attempts"] != 3.0 || failed["max_attempts"] != 3.0 {
		t.Fatalf("errand failed list: %v, want 3 of 3 attempts", failed)
	}

	// The page forbids, by its CSP, any fetch beyond errand's origin.
	code, h, _ := s.dashboardRequest("GET", "/monitoring/", "", "admin", "dash-secret")
	if csp := h.Get("Content-Security-Policy"); code != http.StatusOK || !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "googleapis") {
		t.Errorf("GET /monitoring/: %d, Content-Security-Policy %q", code, csp)
	}

	dir := t.TempDir()
	b := startBrowser(t, map[string]string{
		"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:dash-secret")),
	})
	root := s.base + "/monitoring"

	// The queues: emails finished 2 jobs, 1 failed for good: 50 %. asynq's
	// attempt counts would say 3 failed of 4 processed, 75 %.
	home := b.open(root+"/", "emails", "default", "Queues", "50.00 %")
	if strings.Contains(home, "75.00 %") {
		t.Errorf("the queue list shows asynq's attempt-based error rate 75.00 %%:\n%.2000s", home)
	}
	if ok, _ := b.eval(`document.fonts.check("16px Roboto") && [...document.fonts].some(f => f.family.includes("Roboto") && f.status === "loaded")`).(bool); !ok {
		t.Error("Roboto did not load from errand")
	}
	t.Logf("queues: %s", b.screenshot(dir, "dashboard-queues.png"))

	// The failed job, as `errand failed list` has it.
	detail := b.open(root+"/queues/emails/tasks/"+failedID, "Attempts: 3/3", "Timeout: 45 seconds")
	for _, want := range []string{"Timeline: this job's entity", failedID, "4.3.0 try again later"} {
		if !strings.Contains(detail, want) {
			t.Errorf("the failed job's page lacks %q:\n%.2000s", want, detail)
		}
	}
	for _, lie := range []string{"1048576", "50 seconds", "non-printable bytes", "Retry:"} {
		if strings.Contains(detail, lie) {
			t.Errorf("the failed job's page shows %q:\n%.2000s", lie, detail)
		}
	}
	href, _ := b.eval(`(document.getElementById("errand-timeline") || {}).getAttribute?.("href") || ""`).(string)
	if want := "/monitoring/timeline?job=" + failedID; href != want {
		t.Errorf("the timeline link's href is %q, want %q", href, want)
	}
	t.Logf("failed job: %s", b.screenshot(dir, "dashboard-failed-job.png"))

	// The completed job: its result is "none", not "non-printable bytes".
	list := b.open(root+"/queues/default?status=completed", noopID[:8])
	if strings.Contains(list, "non-printable bytes") {
		t.Errorf("the completed list shows \"non-printable bytes\":\n%.2000s", list)
	}
	rowLinks, _ := b.eval(`[...document.querySelectorAll("a.errand-timeline")].map(a => a.getAttribute("href")).join(" ")`).(string)
	if !strings.Contains(rowLinks, "/monitoring/timeline?job="+noopID) {
		t.Errorf("the completed list's row links are %q, want one to /monitoring/timeline?job=%s", rowLinks, noopID)
	}
	t.Logf("completed list: %s", b.screenshot(dir, "dashboard-completed-list.png"))
	done := b.open(root+"/queues/default/tasks/"+noopID, "Attempts: 1/3", "Result: none")
	if strings.Contains(done, "non-printable bytes") {
		t.Errorf("the completed job's page:\n%.2000s", done)
	}
	t.Logf("completed job: %s", b.screenshot(dir, "dashboard-completed-job.png"))

	b.checkStayedHome()
}
