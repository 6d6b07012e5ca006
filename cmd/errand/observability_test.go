package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/sandbox"
	"github.com/errandhq/errand/internal/slack/slacktest"
	"go.yaml.in/yaml/v3"
)

// scrape is one read of serve's /metrics: every sample line, by metric name.
type scrape map[string][]string

func (s *stack) scrapeMetrics() scrape {
	s.t.Helper()
	resp, err := http.Get(s.base + "/metrics")
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	out := scrape{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name := line[:strings.IndexAny(line, "{ ")]
		out[name] = append(out[name], line)
	}
	out["#text"] = []string{string(body)}
	return out
}

// value is the sample of name whose labels contain every one of labels
// (`queue="emails"`), or -1.
func (sc scrape) value(name string, labels ...string) float64 {
	for _, line := range sc[name] {
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if ok {
			v, _ := strconv.ParseFloat(line[strings.LastIndex(line, " ")+1:], 64)
			return v
		}
	}
	return -1
}

// The names the dashboard and the alerts query: errand's own (errand_…)
// and their label matchers.
var (
	errandMetric = regexp.MustCompile(`\berrand_[a-z0-9_]+`)
	selector     = regexp.MustCompile(`(errand_[a-z0-9_]+)\{([^}]*)\}`)
	matcher      = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
)

// dashboardExprs returns deploy/grafana/errand.json's queries and panel
// titles; every query must use the dashboard's data source variable.
func dashboardExprs(t *testing.T) (exprs, titles []string) {
	t.Helper()
	var dash struct {
		Templating struct{ List []struct{ Name, Type string } }
		Panels     []struct {
			Title      string
			Type       string
			Datasource struct{ UID string }
			Targets    []struct {
				Expr       string
				Datasource struct{ UID string }
			}
		}
	}
	if err := json.Unmarshal([]byte(deployFile(t, "grafana/errand.json")), &dash); err != nil {
		t.Fatalf("deploy/grafana/errand.json: %v", err)
	}
	if len(dash.Templating.List) != 1 || dash.Templating.List[0].Type != "datasource" {
		t.Errorf("the dashboard's variables %+v: want one Prometheus data source to pick at import", dash.Templating.List)
	}
	for _, p := range dash.Panels {
		titles = append(titles, p.Title)
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q queries nothing", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.Datasource.UID != "${datasource}" || p.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q does not query the data source picked at import", p.Title)
			}
			exprs = append(exprs, tg.Expr)
		}
	}
	return exprs, titles
}

// rulesExprs returns deploy/prometheus/errand-rules.yml's alert names and
// expressions.
func rulesExprs(t *testing.T) (exprs, alerts []string) {
	t.Helper()
	var rules struct {
		Groups []struct {
			Rules []struct{ Alert, Expr string }
		}
	}
	if err := yaml.Unmarshal([]byte(deployFile(t, "prometheus/errand-rules.yml")), &rules); err != nil {
		t.Fatal(err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			exprs = append(exprs, r.Expr)
		}
	}
	return exprs, alerts
}

// promtool runs Debian's promtool in deploy/prometheus.
func promtool(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is not installed (scripts/test.sh installs the prometheus package): the alerts cannot be checked")
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = "../../deploy/prometheus"
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// The Grafana dashboard and the Prometheus alerts of deploy/ query only what
// errand really exports: promtool accepts the rules (and their unit tests:
// each alert fires on the series it is meant for), and every errand_ metric
// and label they name is on the /metrics of a running serve once a worker
// has run jobs that completed, were retried, failed for good, escalated and
// throttled. The metrics pass promtool's naming lint, and the ones added for
// the dashboard move: HTTP requests are counted per route, workers alive per
// queue.
func TestGrafanaAndAlertsUseMetricsErrandExports(t *testing.T) {
	t.Parallel()
	promtool(t, "", "check", "rules", "errand-rules.yml")
	promtool(t, "", "test", "rules", "errand-rules.test.yml")
	promtool(t, "", "check", "config", "prometheus.yml")

	dashExprs, titles := dashboardExprs(t)
	for _, want := range []string{"Jobs/s by type and outcome", "Queue sizes", "Queue latency", "Retries/s by type", "Final failures",
		"Escalations", "Throttle holds", "Outbox backlog", "Relay lag", "HTTP requests/s by route and code", "HTTP p99 latency by route"} {
		if !strings.Contains(strings.Join(titles, "\n")+"\n", want+"\n") {
			t.Errorf("the dashboard has no panel %q", want)
		}
	}
	ruleExprs, alerts := rulesExprs(t)
	for _, want := range []string{"ErrandFinalFailures", "ErrandEscalationNotSent", "ErrandOutboxBacklogGrowing", "ErrandQueueLatencyHigh",
		"ErrandWorkerGone", "ErrandRedisDown"} {
		if !strings.Contains(strings.Join(alerts, " ")+" ", want+" ") {
			t.Errorf("the alerts have no %s", want)
		}
	}

	s := startStack(t, stackOptions{toml: apiTOML + fastRetries})
	// A welcome email retried then failed for good (SMTP 451 three times),
	// which is escalated and whose digest email is sent; a Slack message
	// throttled once; a job queued over HTTP that completes.
	s.smtp.RejectRecipients("@temp.test", 451, "4.3.0 try again later")
	failed := s.enqueue("user:welcome_email", `{"user_id":1,"email":"x@temp.test","first_name":"X"}`)
	s.sandbox.AddFault(sandbox.Fault{Service: slacktest.Service, Status: http.StatusTooManyRequests, RetryAfter: 1, Count: 1})
	s.enqueue("user:notify_staff", newCustomer)
	before := s.scrapeMetrics().value("errand_http_requests_total", `route="/api/jobs"`, `method="POST"`, `code="202"`)
	code, acc, _ := s.api("POST", "/api/jobs", firstToken, `{"type":"ops:noop","payload":{}}`)
	if code != http.StatusAccepted {
		t.Fatalf("enqueue: %d %v", code, acc)
	}
	s.waitJobState(firstToken, str(acc["id"]), "completed")
	s.waitFor(30*time.Second, "the failure's escalation email", func() bool { return len(s.escalations()) == 1 && s.failedJob(failed) != nil })
	s.waitFor(30*time.Second, "the throttled Slack message", func() bool { return len(s.sandbox.Slack.Messages()) == 1 })

	// Every name the dashboard and the alerts use, once the workers' counts
	// have reached Redis (every second).
	used := map[string]bool{}
	for _, e := range append(dashExprs, ruleExprs...) {
		for _, name := range errandMetric.FindAllString(e, -1) {
			used[name] = true
		}
	}
	var sc scrape
	var missing []string
	deadline := time.Now().Add(20 * time.Second)
	for {
		sc = s.scrapeMetrics()
		missing = missing[:0]
		for name := range used {
			if len(sc[name]) == 0 {
				missing = append(missing, name)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("the dashboard or the alerts use metrics errand serve does not export: %v\n/metrics:\n%s", missing, sc["#text"][0])
	}
	for _, e := range append(dashExprs, ruleExprs...) {
		for _, sel := range selector.FindAllStringSubmatch(e, -1) {
			for _, m := range matcher.FindAllStringSubmatch(sel[2], -1) {
				if !strings.Contains(strings.Join(sc[sel[1]], "\n"), m[1]+`="`) {
					t.Errorf("%q: %s has no label %s", e, sel[1], m[1])
				}
			}
		}
	}
	t.Logf("the dashboard and the alerts use %d errand metrics, all exported", len(used))

	// Prometheus' naming conventions (units in names, _total counters, help
	// texts), as promtool lints them.
	if out := promtool(t, sc["#text"][0], "check", "metrics"); strings.TrimSpace(out) != "" {
		t.Errorf("promtool check metrics:\n%s", out)
	}

	// The added metrics move.
	if after := sc.value("errand_http_requests_total", `route="/api/jobs"`, `method="POST"`, `code="202"`); after != max(before, 0)+1 {
		t.Errorf("POST /api/jobs answered 202 once: errand_http_requests_total went from %v to %v", before, after)
	}
	if n := sc.value("errand_http_request_duration_seconds_count", `route="/api/jobs/{id}"`); n < 1 {
		t.Errorf("GET /api/jobs/{id} was timed %v times", n)
	}
	if n := sc.value("errand_workers", `queue="emails"`); n != 1 {
		t.Errorf("errand_workers{queue=\"emails\"} = %v with one worker", n)
	}
	s.startWorker(&syncBuffer{})
	s.waitFor(20*time.Second, "a second worker to be counted", func() bool {
		return s.scrapeMetrics().value("errand_workers", `queue="emails"`) == 2
	})
}
