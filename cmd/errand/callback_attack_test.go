package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/store"
	"github.com/errandhq/errand/jobs"
)

// A token holder aims the callback at errand's own network, the address as a
// literal in every spelling: refused at enqueue, naming callback_url, and
// nothing is queued.
func TestAttackCallbackAimedInwardIsRefusedAtEnqueue(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{toml: apiTOML, noWorker: true, publicCallbacksOnly: true})
	port := strings.TrimPrefix(s.base, "http://127.0.0.1:")
	for _, target := range []string{
		"http://127.0.0.1:" + port + "/monitoring/api/queues/critical:pause",
		"http://10.0.0.1/",
		"http://169.254.169.254/latest/meta-data",
		"http://[fd00::1]/",
		"http://[::ffff:127.0.0.1]:" + port + "/",
		"http://[::1]:" + port + "/",
		"http://localhost:" + port + "/",
		"http://2130706433:" + port + "/",
		"http://user:pass@hooks.example.com/",
		"gopher://hooks.example.com/",
	} {
		body, _ := json.Marshal(map[string]any{"type": "ops:noop", "payload": map[string]any{}, "callback_url": target, "callback_token": "t"})
		code, out, _ := s.api("POST", "/api/jobs", firstToken, string(body))
		fields, _ := out["fields"].(map[string]any)
		if code != 422 || fields["callback_url"] == nil {
			t.Errorf("callback_url %s: %d %v, want 422 naming callback_url", target, code, out)
		}
	}
	// The relay keeps order: once a later job is in Redis, a refused one
	// would be there too.
	code, ok, _ := s.api("POST", "/api/jobs", firstToken, `{"type":"ops:noop","payload":{}}`)
	if code != 202 {
		t.Fatalf("a plain job: %d %v", code, ok)
	}
	var queued []string
	s.waitFor(10*time.Second, "the plain job in Redis", func() bool {
		queued = queued[:0]
		for _, ti := range s.queued("default") {
			queued = append(queued, ti.ID)
		}
		return len(queued) > 0
	})
	if len(queued) != 1 || queued[0] != ok["id"] {
		t.Fatalf("queued %v, want only %v", queued, ok["id"])
	}
}

// With no api.callback_secret a callback could not be signed: refused at
// enqueue, saying what the server needs.
func TestAttackCallbackWithoutServerSecretIsRefused(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{toml: apiTOML, noWorker: true, noCallbackSecret: true})
	code, out, _ := s.api("POST", "/api/jobs", firstToken, `{"type":"ops:noop","payload":{},"callback_url":"https://hooks.example.com/x"}`)
	fields, _ := out["fields"].(map[string]any)
	if code != 422 || !strings.Contains(str(fields["callback_url"]), "api.callback_secret") {
		t.Fatalf("%d %v, want 422 saying callbacks need api.callback_secret", code, out)
	}
}

// waitFailedUnlessReached waits for the job id in the failed list, or for a
// request to reach the listener that must get none, and returns the job (nil
// when the listener was reached first).
func (s *stack) waitFailedUnlessReached(id string, mustNotBeReached *receiver) map[string]any {
	s.t.Helper()
	var job map[string]any
	s.waitFor(30*time.Second, id+" in the failed list", func() bool {
		if mustNotBeReached.count() > 0 {
			return true
		}
		job = s.failedJob(id)
		return job != nil
	})
	return job
}

// The enqueue check reads the URL only; the real check is where the worker
// connects. A name that resolves to loopback (here saved past the enqueue
// check, as a row from an older errand would be) is refused when connecting:
// the loopback listener receives nothing, and the error names the host only.
func TestAttackCallbackNameResolvingToLoopbackIsRefusedWhenConnecting(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{toml: apiTOML, publicCallbacksOnly: true})
	inner := startReceiver(t, nil)
	_, port, _ := net.SplitHostPort(inner.Listener.Addr().String())
	cfg, err := config.Load(s.config, true, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := job.NewRegistry(cfg)
	jobs.Register(reg)
	if err := reg.Configure(cfg.Jobs); err != nil {
		t.Fatal(err)
	}
	e, err := reg.PrepareRaw("ops:noop", []byte(`{}`), job.WithCallback())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db().SaveAPIJob(t.Context(), store.APIJob{Envelope: e, CallbackURL: "http://localhost:" + port + "/hook", CallbackToken: "cb-token"}); err != nil {
		t.Fatal(err)
	}
	job := s.waitFailedUnlessReached("callback-"+e.ID+"-completed", inner)
	if n := inner.count(); n != 0 {
		t.Fatalf("the loopback listener received %d requests", n)
	}
	if job["error"] != "callback: localhost resolves to a private address; refused" || job["attempts"] != 1.0 {
		t.Fatalf("the refused callback: %v", job)
	}
}

// The receiver answers 307 towards an internal address: errand does not
// follow (307 would replay the POST there); a 3xx is a failed callback.
func TestAttackCallbackRedirectIsNotFollowed(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{toml: apiTOML})
	inner := startReceiver(t, nil)
	outer := startReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, inner.URL+"/monitoring/api/queues/critical:pause", http.StatusTemporaryRedirect)
	})
	_, acc, _ := s.api("POST", "/api/jobs", firstToken, `{"type":"ops:noop","payload":{},"callback_url":"`+outer.URL+`/cb"}`)
	job := s.waitFailedUnlessReached("callback-"+str(acc["id"])+"-completed", inner)
	if outer.count() != 1 || inner.count() != 0 {
		t.Fatalf("receiver got %d, redirect target got %d requests; want 1 and 0", outer.count(), inner.count())
	}
	if job["error"] != "callback: POST outcome: HTTP 307" {
		t.Fatalf("the redirected callback: %v", job)
	}
}

// The receiver answers 500 with a large body (what an internal service would
// say): the callback job's error keeps the status only; no part of the body
// reaches GET /api/jobs, Redis, the logs or an email.
func TestAttackCallbackAnswerNeverComesBack(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{toml: apiTOML})
	const marker = "INTERNAL-ANSWER-7f3a"
	sink := startReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, strings.Repeat(marker+" ", 64<<10))
	})
	_, acc, _ := s.api("POST", "/api/jobs", firstToken, `{"type":"ops:noop","payload":{},"callback_url":"`+sink.URL+`/cb"}`)
	id := "callback-" + str(acc["id"]) + "-completed"
	s.waitFor(30*time.Second, "the callback's first failure in Redis", func() bool {
		if sink.count() == 0 {
			return false
		}
		for _, text := range s.redisText() {
			if strings.Contains(text, id) && strings.Contains(text, "callback: POST outcome") {
				return true
			}
		}
		return false
	})
	var places []string
	code, st, _ := s.api("GET", "/api/jobs/"+id, firstToken, "")
	switch code {
	case 200:
		if st["last_error"] != "callback: POST outcome: HTTP 500" {
			t.Errorf("GET /api/jobs/%s: last_error %q, want the status only", id, st["last_error"])
		}
		raw, _ := json.Marshal(st)
		places = append(places, string(raw))
	case 404: // status visible only to the job's own token
	default:
		t.Fatalf("GET /api/jobs/%s: %d", id, code)
	}
	for _, text := range s.redisText() {
		places = append(places, text)
	}
	places = append(places, s.serve.String(), s.worker.String())
	for _, m := range s.smtp.Messages() {
		places = append(places, string(m.Raw))
	}
	for _, p := range places {
		if i := strings.Index(p, marker); i >= 0 {
			t.Fatalf("the receiver's answer came back: …%.200s", p[max(0, i-100):])
		}
	}
}

// A token holder (who sees callback_token) forges a callback: the receiver
// checks X-Errand-Signature with api.callback_secret, which the token holder
// does not have, so a signature keyed by the token does not pass.
func TestAttackCallbackSignatureIsKeyedByTheServerSecret(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{toml: apiTOML})
	sink := startReceiver(t, nil)
	_, acc, _ := s.api("POST", "/api/jobs", firstToken, `{"type":"ops:noop","payload":{},"callback_url":"`+sink.URL+`/cb","callback_token":"cb-token"}`)
	s.waitFor(20*time.Second, "the callback", func() bool { return sink.count() > 0 })
	r := sink.requests()[0]
	header, body := r.header, r.body
	sig := header.Get("X-Errand-Signature")
	if err := verifyCallback(sig, body, testCallbackSecret, time.Now()); err != nil {
		t.Fatalf("X-Errand-Signature %q does not verify with api.callback_secret: %v", sig, err)
	}
	if header.Get("X-Errand-Callback-Token") != "cb-token" || !strings.Contains(string(body), str(acc["id"])) {
		t.Fatalf("callback %v %s", header, body)
	}
	// What the token holder can compute, in the new format and the old one.
	ts, _, _ := strings.Cut(strings.TrimPrefix(sig, "t="), ",")
	for _, f := range []string{"t=" + ts + ",v1=" + callbackSign("cb-token", ts, body), callbackSign("cb-token", header.Get("X-Errand-Timestamp"), body)} {
		if f == sig || verifyCallback(f, body, testCallbackSecret, time.Now()) == nil {
			t.Fatalf("a signature keyed by the callback token passes: %s", f)
		}
	}
	if strings.Contains(string(body), testCallbackSecret) || strings.Contains(strings.Join(headerValues(header), "\n"), testCallbackSecret) {
		t.Fatal("the callback carries api.callback_secret")
	}
}

func headerValues(h http.Header) []string {
	var out []string
	for k, vs := range h {
		out = append(out, k+": "+strings.Join(vs, ","))
	}
	return out
}
