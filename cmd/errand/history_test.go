package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/store"
	"github.com/hibiken/asynq"
)

// A registration's jobs make one timeline for the user: the welcome email's
// first attempt fails (SMTP 451), its second succeeds, and `errand timeline`,
// GET /api/timeline and the dashboard's timeline page all show it, oldest
// first, each attempt with its time and error.
func TestTimelineOfARegistrationWithOneFailedAttempt(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{toml: fastRetries + apiTOML})
	s.smtp.RejectTemporarily(451, "4.3.0 mailbox busy, try again later")
	status, user := s.post("/api/users", registration("ada@shop.test"), nil)
	if status != http.StatusCreated {
		t.Fatalf("registration: %d %v", status, user)
	}
	entity := fmt.Sprintf("user:%d", int64(user["id"].(float64)))
	s.waitFor(15*time.Second, "the first SMTP attempt", func() bool { return s.smtp.Attempts() >= 1 })
	s.smtp.Accept()
	s.waitFor(15*time.Second, "the welcome email", func() bool { return len(s.mailTo("ada@shop.test")) == 1 })

	var tl struct {
		Entity string              `json:"entity"`
		Jobs   []store.TimelineJob `json:"jobs"`
	}
	var out string
	s.waitFor(15*time.Second, "every job of the registration completed on the timeline", func() bool {
		var err error
		if out, err = s.cli("timeline", entity, "--json"); err != nil {
			t.Fatalf("errand timeline --json: %v: %s", err, out)
		}
		if err := json.Unmarshal([]byte(out), &tl); err != nil {
			t.Fatalf("errand timeline --json: %v: %s", err, out)
		}
		done := 0
		for _, j := range tl.Jobs {
			if j.State == "completed" {
				done++
			}
		}
		return done == 3
	})
	types := map[string]store.TimelineJob{}
	for i, j := range tl.Jobs {
		types[j.Type] = j
		if i > 0 && j.QueuedAt.Before(tl.Jobs[i-1].QueuedAt) {
			t.Fatalf("timeline not oldest first: %s", out)
		}
	}
	welcome := types["user:welcome_email"]
	if tl.Entity != entity || len(tl.Jobs) != 3 || len(welcome.Attempts) != 2 ||
		!strings.Contains(welcome.Attempts[0].Error, "451") || welcome.Attempts[1].Error != "" ||
		!welcome.Attempts[1].At.After(welcome.Attempts[0].At) {
		t.Fatalf("timeline of %s: %s", entity, out)
	}
	for _, typ := range []string{"user:notify_staff", "user:sync_crm"} {
		if j := types[typ]; len(j.Attempts) != 1 || j.Attempts[0].Error != "" {
			t.Fatalf("%s on the timeline: %+v", typ, j)
		}
	}
	table, err := s.cli("timeline", entity)
	if err != nil || !strings.Contains(table, "attempt 2") || !strings.Contains(table, "451") {
		t.Fatalf("errand timeline: %v\n%s", err, table)
	}
	t.Logf("errand timeline %s\n%s", entity, table)

	// The API answers the same as the CLI's --json.
	code, _, _ := s.api("GET", "/api/timeline?entity="+entity, "", "")
	if code != http.StatusUnauthorized {
		t.Fatalf("GET /api/timeline without a token: %d", code)
	}
	r := s.request("GET", "/api/timeline?entity="+entity, nil, http.Header{"Authorization": {"Bearer " + firstToken}})
	var fromAPI, fromCLI any
	_ = json.Unmarshal(r.body, &fromAPI)
	_ = json.Unmarshal([]byte(out), &fromCLI)
	if r.status != http.StatusOK || !reflect.DeepEqual(fromAPI, fromCLI) {
		t.Fatalf("GET /api/timeline: %d\n%s\nCLI:\n%s", r.status, r.body, out)
	}
	code, body, _ := s.api("GET", "/api/timeline?entity=user", firstToken, "")
	if fields, _ := body["fields"].(map[string]any); code != http.StatusUnprocessableEntity || !strings.Contains(fmt.Sprint(fields["entity"]), `"user"`) {
		t.Fatalf("a malformed entity: %d %v", code, body)
	}
	code, body, _ = s.api("GET", "/api/timeline?entity=user:999999", firstToken, "")
	if jobs, ok := body["jobs"].([]any); code != http.StatusOK || !ok || len(jobs) != 0 {
		t.Fatalf("an unknown entity: %d %v", code, body)
	}

	// The dashboard's page, reached by the job's id as the dashboard links it.
	code, header, page := s.dashboardRequest("GET", "/monitoring/timeline?job="+welcome.ID, "", "", "")
	if code != http.StatusOK || !strings.Contains(page, "Timeline of "+entity) || !strings.Contains(page, "attempt 2") ||
		!strings.Contains(page, "451") || !strings.Contains(header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("the timeline page: %d %v\n%s", code, header, page)
	}
	if code, _, _ := s.dashboardRequest("GET", "/monitoring/timeline?job="+welcome.ID, "evil.example", "", ""); code != http.StatusForbidden {
		t.Fatalf("the timeline page for another Host: %d, want 403", code)
	}
}

// 12,000 jobs failing for good are all in the failed list — in the
// database and in Redis's archive, which errand no longer trims at 10,000;
// after Redis loses everything (FLUSHALL) the list is still whole, and
// `errand failed retry --all` queues every job from the database, under its
// own id, and they run again.
func TestTwelveThousandFailuresAllListedAndSurviveFlushAll(t *testing.T) {
	t.Parallel()
	const n = 12000
	s := startStack(t, stackOptions{serves: 1, workers: 1, workerArgs: []string{"--concurrency", "64"}})
	start := time.Now()
	foreign := s.foreignClient()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				// A payload that does not decode: a permanent failure, at once.
				if _, err := foreign.Enqueue(asynq.NewTask("ops:noop", []byte(`"not an object"`)), asynq.Queue("default")); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	ctx := context.Background()
	dbFailed := func() []store.FailedJob {
		l, err := s.db().FailedJobs(ctx, store.FailedFilter{})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	s.waitFor(120*time.Second, "12,000 failures in the database", func() bool { return len(dbFailed()) == n })
	t.Logf("%d jobs queued and failed for good in %s", n, time.Since(start).Round(time.Millisecond))
	if info, err := s.inspector().GetQueueInfo("default"); err != nil || info.Archived != n {
		t.Fatalf("Redis's archive holds %v (%v), want %d: it must not be trimmed", info, err, n)
	}
	list := s.failed()
	if len(list) != n {
		t.Fatalf("errand failed list --json: %d jobs, want %d", len(list), n)
	}
	if h, _ := list[0]["history"].([]any); len(h) != 1 || list[0]["type"] != "ops:noop" {
		t.Fatalf("a failed job: %v", list[0])
	}
	ids := map[string]bool{}
	for _, f := range list {
		ids[f["id"].(string)] = true
	}

	if err := s.redis.Client().FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	out, err := s.cli("failed", "list")
	if err != nil || strings.Count(out, "ops:noop") != n {
		t.Fatalf("errand failed list after FLUSHALL: %v, %d jobs", err, strings.Count(out, "ops:noop"))
	}
	t.Logf("after FLUSHALL, errand failed list:\n%s…", strings.Join(strings.SplitN(out, "\n", 4)[:3], "\n"))
	retried := time.Now()
	out, err = s.cli("failed", "retry", "--all")
	if err != nil || !strings.Contains(out, fmt.Sprintf("%d failed job(s) queued again", n)) {
		t.Fatalf("errand failed retry --all: %v %s", err, out)
	}
	t.Logf("errand failed retry --all (%s): %s", time.Since(retried).Round(time.Millisecond), strings.TrimSpace(out))
	// Each runs again — and fails again: the list fills up with the same
	// ids, each with two attempts now.
	s.waitFor(120*time.Second, "every retried job to run again", func() bool {
		l := dbFailed()
		if len(l) != n {
			return false
		}
		for _, f := range l {
			if len(f.History) != 2 {
				return false
			}
		}
		return true
	})
	for _, f := range dbFailed() {
		if !ids[f.ID] {
			t.Fatalf("job %s is not one of those retried: a retry keeps the id", f.ID)
		}
	}
}

// A final failure the database cannot take (here its table is away) still
// reaches the failed list: the worker says so at ERROR and archives the job
// in Redis, and the list's next read adopts it from there. The escalation
// email links the failure to its timeline.
func TestFinalFailureSurvivesAnUnwritableDatabase(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{})
	ctx := context.Background()
	db := s.db()
	raw, err := sql.Open("sqlite", s.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	exec := func(q string) {
		t.Helper()
		if _, err := raw.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	exec(`ALTER TABLE failed_jobs RENAME TO failed_jobs_away`)
	info, err := s.foreignClient().Enqueue(asynq.NewTask("ops:noop", []byte(`"not an object"`)), asynq.Queue("default"))
	if err != nil {
		t.Fatal(err)
	}
	s.waitFor(20*time.Second, "the job in Redis's archive", func() bool {
		ti, err := s.inspector().GetTaskInfo("default", info.ID)
		return err == nil && ti.State == asynq.TaskStateArchived
	})
	if lines := s.worker.lines("final failure not written to the database"); len(lines) != 1 || !strings.Contains(lines[0], info.ID) {
		t.Fatalf("the worker's log of the unwritten failure: %q", lines)
	}
	exec(`ALTER TABLE failed_jobs_away RENAME TO failed_jobs`)
	if l, _ := db.FailedJobs(ctx, store.FailedFilter{}); len(l) != 0 {
		t.Fatalf("the database's list before the adoption: %v", l)
	}
	if f := s.failedJob(info.ID); f == nil || !strings.Contains(fmt.Sprint(f["error"]), "invalid payload") {
		t.Fatalf("errand failed list does not show the failure: %v", s.failed())
	}
	if l, _ := db.FailedJobs(ctx, store.FailedFilter{}); len(l) != 1 || l[0].ID != info.ID {
		t.Fatalf("the database's list after the adoption: %v", l)
	}
	s.waitFor(15*time.Second, "the escalation", func() bool { return len(s.escalations()) > 0 })
	if esc := s.escalations()[0]; !strings.Contains(esc.Text, "/monitoring/timeline?job="+info.ID) {
		t.Fatalf("the escalation does not link the timeline:\n%s", esc.Text)
	}
	out, err := s.cli("failed", "forget", info.ID)
	if err != nil || len(s.failed()) != 0 {
		t.Fatalf("errand failed forget: %v %s; list %v", err, out, s.failed())
	}
	if _, err := s.inspector().GetTaskInfo("default", info.ID); err == nil {
		t.Fatal("a forgotten job is still in Redis's archive")
	}
}

// `errand failed retry --all` and `errand failed prune` on many jobs show
// their progress on a terminal (here a pseudo-terminal made by script(1),
// which every Debian has), and nothing when stderr is not one, or with
// --json.
func TestLongFailedCommandsShowProgressOnATerminal(t *testing.T) {
	t.Parallel()
	const n = 1200
	bin := errandBinary(t)
	s := startStack(t, stackOptions{})
	foreign := s.foreignClient()
	for range n {
		if _, err := foreign.Enqueue(asynq.NewTask("ops:noop", []byte(`"not an object"`)), asynq.Queue("default")); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	count := func() int {
		l, err := s.db().FailedJobs(ctx, store.FailedFilter{})
		if err != nil {
			t.Fatal(err)
		}
		return len(l)
	}
	s.waitFor(60*time.Second, "the jobs in the failed list", func() bool { return count() == n })
	onTerminal := func(args string) string {
		t.Helper()
		out, err := exec.Command("script", "-qec", bin+" "+args+" --config "+s.config, "/dev/null").CombinedOutput()
		if err != nil {
			t.Fatalf("errand %s on a terminal: %v\n%s", args, err, out)
		}
		return string(out)
	}
	out := onTerminal("failed retry --all")
	if !strings.Contains(out, "\rqueued again 500/1200 (41%)") || !strings.Contains(out, "\rqueued again 1200/1200 (100%)") {
		t.Fatalf("failed retry --all on a terminal shows no progress:\n%q", out)
	}
	s.waitFor(60*time.Second, "the retried jobs back in the failed list", func() bool { return count() == n })
	// Not a terminal: the result line only, nothing on stderr.
	cmd := exec.Command(bin, "failed", "retry", "--all", "--json", "--config", s.config)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil || stderr.Len() != 0 || strings.Contains(stdout.String(), "\r") {
		t.Fatalf("failed retry --all in a script: %v\nstdout %q\nstderr %q", err, stdout.String(), stderr.String())
	}
	s.waitFor(60*time.Second, "the retried jobs back in the failed list", func() bool { return count() == n })
	if out := onTerminal("failed retry --all --json"); strings.Contains(out, "\rqueued again") {
		t.Fatalf("failed retry --all --json shows progress:\n%q", out)
	}
	s.waitFor(60*time.Second, "the retried jobs back in the failed list", func() bool { return count() == n })
	out = onTerminal("failed prune --older-than 0s")
	if !strings.Contains(out, "\rpruned 1200/1200 (100%)") || !strings.Contains(out, "1200 failed job(s) older than 0s removed") || count() != 0 {
		t.Fatalf("failed prune on a terminal:\n%q", out)
	}
	if info, err := s.inspector().GetQueueInfo("default"); err != nil || info.Archived != 0 {
		t.Fatalf("pruned jobs are still in Redis's archive: %v %v", info, err)
	}
}

// `errand failed flush` empties both the database's list and Redis's
// archive (the dashboard's failed view).
func TestFailedFlushEmptiesBothLists(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{})
	for range 3 {
		if _, err := s.foreignClient().Enqueue(asynq.NewTask("ops:noop", []byte(`"not an object"`)), asynq.Queue("default")); err != nil {
			t.Fatal(err)
		}
	}
	s.waitFor(20*time.Second, "3 failed jobs", func() bool { return len(s.failed()) == 3 })
	if out, err := s.cli("failed", "flush"); err != nil || !strings.Contains(out, "3 failed job(s) removed") {
		t.Fatalf("errand failed flush: %v %s", err, out)
	}
	if l, err := s.db().FailedJobs(context.Background(), store.FailedFilter{}); err != nil || len(l) != 0 {
		t.Fatalf("the database's list after flush: %v %v", l, err)
	}
	if info, err := s.inspector().GetQueueInfo("default"); err != nil || info.Archived != 0 {
		t.Fatalf("Redis's archive after flush: %v %v", info, err)
	}
}

// A job queued through the API that failed for good keeps its id through
// everything: after FLUSHALL, GET /api/jobs/{id} still answers from the
// database's failed list; `errand failed retry` queues it from there under
// the same id, and the same status URL then reports it completed.
func TestAPIJobFailedForGoodKeepsItsIDAcrossFlushAllAndRetry(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{toml: welcomeAtOnce + apiTOML})
	s.smtp.RejectPermanently(550, "5.1.1 mailbox unavailable")
	code, acc, _ := s.api("POST", "/api/jobs", firstToken,
		`{"type":"user:welcome_email","payload":{"user_id":7,"email":"grace@shop.test","first_name":"Grace"}}`)
	if code != http.StatusAccepted {
		t.Fatalf("POST /api/jobs: %d %v", code, acc)
	}
	id := acc["id"].(string)
	s.waitJobState(firstToken, id, "failed")
	s.waitFor(15*time.Second, "the failure in the database", func() bool {
		_, err := s.db().FailedJob(context.Background(), id)
		return err == nil
	})
	if err := s.redis.Client().FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	code, st := s.jobStatus(firstToken, id)
	if code != http.StatusOK || st["state"] != "failed" || st["attempts"] != 1.0 || !strings.Contains(fmt.Sprint(st["last_error"]), "550") {
		t.Fatalf("GET /api/jobs/%s after FLUSHALL: %d %v", id, code, st)
	}
	if code, _ := s.jobStatus(secondToken, id); code != http.StatusNotFound {
		t.Fatalf("another token reads the failed job: %d", code)
	}
	s.smtp.Accept()
	if out, err := s.cli("failed", "retry", id); err != nil || !strings.Contains(out, "queued again, with the same id") {
		t.Fatalf("errand failed retry: %v %s", err, out)
	}
	s.waitJobState(firstToken, id, "completed")
	if len(s.mailTo("grace@shop.test")) != 1 {
		t.Fatal("the retried welcome email was not sent once")
	}
	var tl struct {
		Jobs []store.TimelineJob `json:"jobs"`
	}
	// The history is written in batches, just after the job's state.
	var out string
	s.waitFor(15*time.Second, "both attempts on the timeline", func() bool {
		out, _ = s.cli("timeline", "user:7", "--json")
		return json.Unmarshal([]byte(out), &tl) == nil && len(tl.Jobs) == 1 && len(tl.Jobs[0].Attempts) == 2 && tl.Jobs[0].State == "completed"
	})
	if tl.Jobs[0].ID != id || !strings.Contains(tl.Jobs[0].Attempts[0].Error, "550") || tl.Jobs[0].Attempts[1].Error != "" {
		t.Fatalf("the timeline of user:7: %s", out)
	}
}

// "Did order 4400000002's tracking reach Shopify?": the order's timeline
// holds the fulfillment push and the tracking sync, each completed.
func TestTimelineOfAnOrder(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{})
	s.sandbox.Shopify.AutoCreateOrders(true)
	if out, err := s.cli("sandbox", "send-order", "--order", "4400000002", "--to", s.base); err != nil || !strings.Contains(out, "200 OK") {
		t.Fatalf("send-order: %v %s", err, out)
	}
	s.waitFor(15*time.Second, "the push to the fulfillment platform", func() bool { return len(s.sandbox.Fulfillment.Orders()) == 1 })
	if out, err := s.cli("sandbox", "send-tracking", "--order", "4400000002", "--tracking", "1ZTRACK0002", "--to", s.base); err != nil || !strings.Contains(out, "200 OK") {
		t.Fatalf("send-tracking: %v %s", err, out)
	}
	var tl struct {
		Entity string              `json:"entity"`
		Jobs   []store.TimelineJob `json:"jobs"`
	}
	var out string
	s.waitFor(20*time.Second, "both jobs completed on the order's timeline", func() bool {
		out, _ = s.cli("timeline", "order:4400000002", "--json")
		if json.Unmarshal([]byte(out), &tl) != nil || len(tl.Jobs) != 2 {
			return false
		}
		return tl.Jobs[0].State == "completed" && tl.Jobs[1].State == "completed"
	})
	if tl.Jobs[0].Type != "order:push_fulfillment" || tl.Jobs[1].Type != "order:sync_tracking" || len(tl.Jobs[1].Attempts) != 1 {
		t.Fatalf("the order's timeline: %s", out)
	}
}
