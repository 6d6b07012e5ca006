package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/rdb"
	"github.com/errandhq/errand/internal/redistest"
	"github.com/errandhq/errand/internal/sandbox"
	"github.com/errandhq/errand/internal/slack/slacktest"
	"github.com/errandhq/errand/internal/tidio/tidiotest"
)

// clusterErrors are what Redis Cluster answers a command or script it will
// not run where it was sent: keys of two slots, a key another node serves,
// a slot being moved or not served. go-redis follows MOVED and ASK itself,
// so one reaching a log line is a command errand sent somewhere it should
// not have.
var clusterErrors = []string{"CROSSSLOT", "non local key", "MOVED", "ASK ", "TRYAGAIN", "CLUSTERDOWN"}

// errand on a Redis Cluster of three masters, its default queues on
// different nodes, as a user runs it: registration (its jobs complete, the
// welcome email no earlier than its 5 s delay), a retry, a throttled call,
// a final failure escalated once and queued again with `errand failed
// retry`, `errand queues`, the dashboard's queue list and /metrics all work,
// and no node refused a command anywhere.
func TestClusterOfThreeMasters(t *testing.T) {
	t.Parallel()
	started := time.Now()
	cluster := redistest.StartCluster(t, 3)
	// Every command any process sends, as the nodes see it.
	monitor := cluster.Monitor()
	s := startStack(t, stackOptions{cluster: cluster, toml: crmNotifyRetries, dashboardPW: "dash-secret"})
	queues := slices.Sorted(maps.Keys(config.Default().Queues))

	// The default queues are spread over the nodes: each queue's keys are
	// in the slot of its name (its hash tag), and the three masters split
	// the slots.
	var pending []string
	for _, q := range queues {
		pending = append(pending, rdb.PendingKey(q))
	}
	spread := s.cluster.Spread(pending...)
	for node, keys := range spread {
		t.Logf("node %s serves %v", node, keys)
	}
	if len(spread) < 2 {
		t.Fatalf("the default queues are all on one node: %v", spread)
	}

	// Registration: the welcome email (emails), the staff notice
	// (notifications) and the CRM contact (crm). The CRM answers 500 once:
	// a retry, one second later.
	s.sandbox.AddFault(sandbox.Fault{Service: tidiotest.Service, Status: http.StatusInternalServerError, Count: 1})
	sent := time.Now()
	if status, body := s.post("/api/users", registration("ada@shop.test"), nil); status != http.StatusCreated {
		t.Fatalf("POST /api/users = %d %v", status, body)
	}
	welcome := s.smtp.WaitFor(t, 1, 20*time.Second)[0]
	if delay := welcome.ReceivedAt.Sub(sent); delay < 5*time.Second {
		t.Fatalf("the welcome email arrived %s after registration, before its 5 s delay", delay)
	} else {
		t.Logf("welcome email delivered %s after the request (delay 5 s)", delay.Round(time.Millisecond))
	}
	s.waitFor(15*time.Second, "the staff notice and the CRM contact", func() bool {
		return len(s.sandbox.Slack.Messages()) == 1 && len(s.sandbox.Tidio.Contacts()) == 1
	})
	crmDone := s.worker.lines("type=user:sync_crm", "job done")
	if len(crmDone) != 1 || !strings.Contains(crmDone[0], "attempt=2 ") {
		t.Fatalf("the CRM job after one 500: %q, want done on attempt 2", crmDone)
	}
	if n := len(s.worker.lines("type=user:sync_crm", "will retry", "class=transient", "counts=true")); n != 1 {
		t.Fatalf("%d transient retries of the CRM job in the log, want 1", n)
	}

	// Throttling: Slack says "slow down, 2 s"; the job waits as told and
	// completes on its first attempt.
	s.sandbox.AddFault(slackSide.throttle)
	calls := len(s.sandbox.Calls(slacktest.Service))
	id := s.enqueue(slackSide.jobType, slackSide.payload)
	s.waitDone(id)
	if n := len(s.worker.lines("job_id="+id, "will retry", "class=throttled", "counts=false", "retry_in="+slackSide.told.String())); n != 1 {
		t.Fatalf("want one throttled retry after %s in the log, got %d", slackSide.told, n)
	}
	if done := s.worker.lines("job_id="+id, "job done")[0]; !strings.Contains(done, "attempt=1 ") {
		t.Fatalf("a throttled retry used an attempt: %s", done)
	}
	if c := s.sandbox.Calls(slacktest.Service)[calls:]; len(c) != 2 || c[1].At.Sub(c[0].At) < slackSide.told-time.Second {
		t.Fatalf("calls after the throttle: %+v, want 2, the second %s after the first", c, slackSide.told)
	}

	// A final failure (Slack's 404, permanent) goes to the failed list and
	// is escalated once, through the critical queue; `errand failed retry`
	// queues it again (under the same id), and now it completes.
	s.sandbox.AddFault(sandbox.Fault{Service: slacktest.Service, Status: http.StatusNotFound, Count: 1})
	id = s.enqueue(slackSide.jobType, slackSide.payload)
	s.waitEscalated(id, 1, "permanent", "HTTP 404")
	out, err := s.cli("failed", "retry", id)
	if err != nil || !strings.Contains(out, "queued again") {
		t.Fatalf("errand failed retry: %v %s", err, out)
	}
	s.waitDone(id) // queued again under the same id
	if f := s.failed(); len(f) != 0 {
		t.Fatalf("the failed list after the retry: %v", f)
	}

	// A job on the default queue, queued by the CLI.
	s.waitDone(s.enqueue("ops:noop", "{}"))

	// The queues' keys are where the cluster says: the emails queue's
	// completed job is counted on the node serving that queue.
	emailsNode := s.cluster.NodeOf(rdb.ProcessedTotalKey("emails"))
	for _, srv := range s.cluster.Servers() {
		n, err := srv.Client().Exists(context.Background(), rdb.ProcessedTotalKey("emails")).Result()
		if srv.Addr() == emailsNode && (err != nil || n != 1) {
			t.Fatalf("the emails queue's processed counter on its node %s: %d, %v", emailsNode, n, err)
		}
	}

	// `errand queues` lists every queue, with the jobs done today.
	out, err = s.cli("queues")
	if err != nil {
		t.Fatalf("errand queues: %v %s", err, out)
	}
	rows := map[string][]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		if f := strings.Fields(l); len(f) > 7 {
			rows[f[0]] = f
		}
	}
	for _, q := range queues {
		if rows[q] == nil {
			t.Errorf("errand queues has no %s row:\n%s", q, out)
		}
	}
	if rows["emails"] != nil && rows["emails"][7] != "1" { // SUCCEEDED TODAY
		t.Errorf("errand queues: emails row %v, want 1 done today", rows["emails"])
	}
	t.Logf("errand queues:\n%s", out)

	// The dashboard (asynqmon, through its own asynq inspector on the
	// cluster) lists every queue that has had a job — as on one server,
	// asynq knows a queue from its first job (asynq:queues) — and those are
	// on every node.
	code, _, body := s.dashboardRequest("GET", "/monitoring/api/queues", "", "admin", "dash-secret")
	var dash struct {
		Queues []struct {
			Queue     string `json:"queue"`
			Processed int    `json:"processed"`
		} `json:"queues"`
	}
	if err := json.Unmarshal([]byte(body), &dash); code != http.StatusOK || err != nil {
		t.Fatalf("GET /monitoring/api/queues: %d %v %.300s", code, err, body)
	}
	listed := map[string]int{}
	for _, q := range dash.Queues {
		listed[q.Queue] = q.Processed
	}
	used := []string{"critical", "crm", "default", "emails", "notifications"}
	for _, q := range used {
		if _, ok := listed[q]; !ok {
			t.Errorf("the dashboard does not list queue %s: %v", q, listed)
		}
	}
	if len(listed) != len(used) {
		t.Errorf("the dashboard lists %v, want the queues that had jobs, %v", slices.Sorted(maps.Keys(listed)), used)
	}
	var usedKeys []string
	for _, q := range used {
		usedKeys = append(usedKeys, rdb.PendingKey(q))
	}
	if n := len(s.cluster.Spread(usedKeys...)); n != len(s.cluster.Servers()) {
		t.Errorf("the queues that had jobs are on %d nodes, want all %d", n, len(s.cluster.Servers()))
	}
	if listed["emails"] != 1 {
		t.Errorf("the dashboard's emails queue: %d processed today, want 1", listed["emails"])
	}

	// Its Redis page shows the cluster, and where each queue lives.
	code, _, body = s.dashboardRequest("GET", "/monitoring/api/redis_info", "", "admin", "dash-secret")
	var info struct {
		Cluster   bool `json:"cluster"`
		Locations []struct {
			Queue string   `json:"queue"`
			Nodes []string `json:"nodes"`
		} `json:"queue_locations"`
	}
	if err := json.Unmarshal([]byte(body), &info); code != http.StatusOK || err != nil || !info.Cluster {
		t.Fatalf("GET /monitoring/api/redis_info: %d %v %.300s", code, err, body)
	}
	located := map[string][]string{}
	for _, l := range info.Locations {
		located[l.Queue] = l.Nodes
	}
	for _, q := range used {
		if node := s.cluster.NodeOf(rdb.PendingKey(q)); !slices.Equal(located[q], []string{node}) {
			t.Errorf("the dashboard places queue %s on %v; it is on %s", q, located[q], node)
		}
	}

	// /metrics: every queue's size and the fleet's counts.
	want := []string{
		`errand_jobs_processed_total{queue="emails",type="user:welcome_email"} 1`,
		`errand_jobs_retried_total{queue="crm",type="user:sync_crm"} 1`,
		`errand_jobs_failed_total{queue="notifications",type="user:notify_staff"} 1`,
		`errand_metrics_redis_up 1`,
	}
	for _, q := range used {
		want = append(want, fmt.Sprintf(`errand_queue_size{queue=%q,state="pending"} 0`, q))
	}
	var missing []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, metrics := s.get("/metrics")
		missing = missing[:0]
		for _, w := range want {
			if !strings.Contains(metrics, w) {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
	}
	for _, w := range missing {
		t.Errorf("/metrics lacks %s", w)
	}

	// A second worker joins; one master may evict keys, and the worker's
	// start-up warning names that master alone. Jobs still run once each.
	evicting := s.cluster.Servers()[1]
	if err := evicting.Client().ConfigSet(context.Background(), "maxmemory-policy", "allkeys-lru").Err(); err != nil {
		t.Fatal(err)
	}
	second := &syncBuffer{}
	s.startWorker(second)
	warned := second.lines("level=WARN", "maxmemory_policy=allkeys-lru")
	if len(warned) != 1 || !strings.Contains(warned[0], evicting.Addr()) {
		t.Errorf("the second worker's eviction warnings: %q, want one naming %s", warned, evicting.Addr())
	}
	for range 20 {
		s.enqueue("ops:noop", "{}")
	}
	s.waitFor(15*time.Second, "the 20 jobs to be done", func() bool {
		return len(second.lines("type=ops:noop", "job done"))+len(s.worker.lines("type=ops:noop", "job done")) == 21
	})
	t.Logf("20 jobs with two workers: the second took %d", len(second.lines("type=ops:noop", "job done")))

	// No node refused anything, in any process's log.
	for name, log := range map[string]string{"serve": s.serve.String(), "worker": s.worker.String(), "second worker": second.String()} {
		for _, e := range clusterErrors {
			for _, l := range strings.Split(log, "\n") {
				if strings.Contains(l, e) {
					t.Errorf("%s log: %q: %s", name, e, l)
				}
			}
		}
	}
	// Every script any process ran — errand's, asynq's, the dashboard's —
	// declared its keys: ElastiCache Serverless refuses a script with none
	// (and Redis Cluster itself one whose keys are in two slots, above).
	scripts, keyless := monitor.Scripts()
	if len(scripts) == 0 {
		t.Error("MONITOR saw no script run at all")
	}
	for _, l := range keyless {
		t.Errorf("a script declaring no key: %.300s", l)
	}
	t.Logf("%d script runs on the nodes, %d without a declared key", len(scripts), len(keyless))
	// And every key a script touched was declared or carries a declared
	// key's hash tag (a queue's task hashes, built inside the script from
	// the queue's declared prefix): what Dragonfly run with
	// --lock_on_hashtags accepts.
	luaLines := 0
	for _, l := range monitor.Lines() {
		if strings.Contains(l, " lua] ") {
			luaLines++
		}
	}
	if luaLines == 0 {
		t.Error("MONITOR saw no command run by a script")
	}
	t.Logf("%d commands run by scripts checked", luaLines)
	for _, u := range monitor.UndeclaredKeys("asynq:") {
		t.Errorf("a script touched a key outside its declared hash tags: %s", u)
	}
	t.Logf("the whole proof took %s", time.Since(started).Round(100*time.Millisecond))
	if testing.Verbose() {
		t.Logf("serve log:\n%s\nworker log:\n%s", s.serve.String(), s.worker.String())
	}
}
