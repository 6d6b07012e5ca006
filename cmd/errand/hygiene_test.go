package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
)

// A job carrying credentials fails for good: the developers' email, the
// job's stored error and the worker's log show none of them. The credentials
// arrive the three ways they do in practice: as payload fields (in any
// spelling, queued by another program), as a payload that is not JSON, and in
// the error text, where a service echoed what it was sent.
func TestEscalationEmailShowsNoSecrets(t *testing.T) {
	t.Parallel()
	echoed := []string{"echoed-client-secret-1", "echoed-bearer-token-2", "echoed-password-3", "pw-in-userinfo-4"}
	s := startStack(t, stackOptions{toml: fastRetries, wrapFakes: func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasPrefix(r.URL.Path, "/contacts") {
				next.ServeHTTP(w, r)
				return
			}
			// A CRM that refuses the call and echoes the credentials back.
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintf(w, `{"errors":[{"code":"unauthorized","message":"refused X-Tidio-Openapi-Client-Secret: %s; `+
				`Authorization: Bearer %s; retry with password=%s at https://ada:%s@crm.test/login"}]}`,
				echoed[0], echoed[1], echoed[2], echoed[3])
		})
	}})
	inPayload := []string{"pl-client-secret", "pl-api-key", "pl-refresh-token", "pl-bot-token", "pl-x-api-key", "pl-authorization", "pl-password"}
	ac := s.foreignClient()
	// Undecodable (email is a number), so it fails for good at once.
	jsonPayload := fmt.Sprintf(`{"user_id":7,"email":42,"first_name":"Ada","Client_Secret":%q,"apiKey":%q,`+
		`"auth":{"REFRESH_TOKEN":%q,"bot-token":%q},"headers":{"X-Api-Key":%q,"Authorization":"Bearer %s"},"items":[{"Password":%q}]}`,
		inPayload[0], inPayload[1], inPayload[2], inPayload[3], inPayload[4], inPayload[5], inPayload[6])
	textPayload := "user=ada&password=hunter2hunter2&note=ok"
	for _, p := range []string{jsonPayload, textPayload} {
		if _, err := ac.Enqueue(asynq.NewTask("user:welcome_email", []byte(p)), asynq.Queue("emails")); err != nil {
			t.Fatal(err)
		}
	}
	crmPayload := `{"user_id":7,"email":"ada@shop.test","changed":{"first_name":"Ada"}}`
	s.enqueue("user:sync_crm", crmPayload)
	listed := func() int {
		n := 0
		for _, m := range s.escalations() {
			n += strings.Count(m.Text, " — job ")
		}
		return n
	}
	s.waitFor(30*time.Second, "the escalation of all 3 failures", func() bool { return listed() == 3 })

	secrets := append(append([]string{"hunter2hunter2"}, echoed...), inPayload...)
	var text string
	for _, m := range s.escalations() {
		text += m.Subject + "\n" + m.Text + "\n" + m.HTML + "\n"
	}
	for _, secret := range secrets {
		if strings.Contains(text, secret) {
			t.Errorf("the escalation email shows %q", secret)
		}
	}
	// What helps the developer is still there.
	for _, want := range []string{"HTTP 401", "X-Tidio-Openapi-Client-Secret", "crm.test/login", "unauthorized: refused", "user=ada", "note=ok", `"first_name":"Ada"`, "[redacted]"} {
		if !strings.Contains(text, want) {
			t.Errorf("the escalation email lacks %q", want)
		}
	}
	// The stored error (GET /api/jobs, the dashboard, `errand failed`) and
	// the worker's log lines of the failure are redacted too.
	for _, f := range s.failed() {
		for _, secret := range echoed {
			if strings.Contains(fmt.Sprint(f["error"]), secret) {
				t.Errorf("the stored error of %s shows %q: %v", f["type"], secret, f["error"])
			}
		}
	}
	for _, secret := range echoed {
		for k, v := range s.redisText() {
			if strings.Contains(v, secret) {
				t.Errorf("Redis key %s holds %q", k, secret)
			}
		}
		if strings.Contains(s.worker.String(), secret) {
			t.Errorf("the worker's log shows %q", secret)
		}
	}
	for _, l := range s.worker.lines("failed for good") {
		for _, secret := range secrets {
			if strings.Contains(l, secret) {
				t.Errorf("the failure's log line shows %q: %s", secret, l)
			}
		}
	}
	if t.Failed() {
		t.Logf("escalation emails:\n%s", text)
	}
}

// A client of POST /api/jobs puts a password beside the fields its job type
// knows: the job is accepted and runs, but the password is stored nowhere.
func TestAPIPayloadCannotSmuggleFieldsIntoRedis(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{toml: apiTOML + welcomeAtOnce})
	body := `{"type":"user:welcome_email","payload":{"user_id":7,"email":"ada@shop.test","first_name":"Ada",` +
		`"password":"smuggled-secret-value","nested":{"token":"smuggled-secret-value"}}}`
	code, out, _ := s.api("POST", "/api/jobs", firstToken, body)
	if code != http.StatusAccepted {
		t.Fatalf("POST /api/jobs: %d %v", code, out)
	}
	s.smtp.WaitFor(t, 1, 15*time.Second)
	s.waitJobState(firstToken, out["id"].(string), "completed")
	keys := s.redisText()
	found := false
	for k, v := range keys {
		if strings.Contains(v, "smuggled-secret-value") {
			t.Errorf("Redis key %s holds the smuggled field:\n%s", k, v)
		}
		found = found || strings.Contains(v, "ada@shop.test")
	}
	if !found {
		t.Fatal("the job's own fields are not in Redis either: the scan looked in the wrong place")
	}
	if strings.Contains(s.serve.String()+s.worker.String(), "smuggled-secret-value") {
		t.Error("a log line shows the smuggled field")
	}
}

// Another program writes a job whose type is not valid UTF-8 (asynq's Go
// client refuses to, others need not) and a queue name that is not either:
// /metrics keeps answering with every valid series, and the process lives.
func TestMetricsSurviveInvalidUTF8Labels(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{noWorker: true})
	ctx := context.Background()
	rdb := s.redis.Client()
	ac := s.foreignClient()
	info, err := ac.Enqueue(asynq.NewTask("bad~name", []byte(`{}`)), asynq.Queue("default"))
	if err != nil {
		t.Fatal(err)
	}
	// The stored message, with the type's "~" turned into a byte that is not
	// UTF-8, as a non-Go client could write it.
	key := "asynq:{default}:t:" + info.ID
	msg, err := rdb.HGet(ctx, key, "msg").Bytes()
	if err != nil {
		t.Fatal(err)
	}
	msg = bytes.Replace(msg, []byte("bad~name"), []byte("bad\xffname"), 1)
	if err := rdb.HSet(ctx, key, "msg", msg).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.SAdd(ctx, "asynq:queues", "bad\xffqueue").Err(); err != nil {
		t.Fatal(err)
	}
	s.startWorker(s.worker)
	s.waitFor(15*time.Second, "the job to fail for good", func() bool { return len(s.worker.lines("failed for good")) > 0 })

	var body string
	s.waitFor(15*time.Second, "/metrics to count the failure", func() bool {
		var code int
		code, body = s.get("/metrics")
		if code != http.StatusOK {
			t.Fatalf("GET /metrics: %d\n%s", code, body)
		}
		return strings.Contains(body, `errand_jobs_failed_total{queue="default",type="bad`+"\uFFFD"+`name"} 1`)
	})
	for _, want := range []string{`errand_queue_size{queue="default",state="failed"} 1`, "errand_metrics_redis_up 1", "go_goroutines"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(body, "bad\xff") {
		t.Error("/metrics shows a label that is not UTF-8")
	}
	if code, _ := s.get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz: %d", code)
	}
}
