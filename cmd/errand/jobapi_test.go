package main

import (
	"strings"
	"sync"
	"testing"
	"time"
)

func TestJobAPIEnqueueStatusAndRefusals(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{toml: apiTOML})
	noop := `{"type":"ops:noop","payload":{}}`
	if code, _, _ := s.api("POST", "/api/jobs", "", noop); code != 401 {
		t.Fatalf("no token: %d", code)
	}
	if code, _, _ := s.api("POST", "/api/jobs", "wrong-token", noop); code != 401 {
		t.Fatalf("wrong token: %d", code)
	}
	for body, field := range map[string]string{
		`{"type":"nope:nope","payload":{}}`:                                                 "type",
		`{"type":"ops:escalate","payload":{"failures":[{"id":"x"}]}}`:                       "type",
		`{"type":"user:welcome_email","payload":{"email":"not-an-email","first_name":"A"}}`: "payload",
		`{"type":"user:welcome_email","payload":{"email":42}}`:                              "payload",
		`{"type":"ops:noop","payload":{},"delay":"soon"}`:                                   "delay",
		`{"type":"ops:noop","payload":{},"delay":-5}`:                                       "delay",
		`{"type":"ops:noop","payload":{},"queue":"nowhere"}`:                                "queue",
		`{"type":"ops:noop","payload":{},"callback_url":"ftp://x"}`:                         "callback_url",
	} {
		code, out, _ := s.api("POST", "/api/jobs", firstToken, body)
		fields, _ := out["fields"].(map[string]any)
		if code != 422 || fields[field] == nil {
			t.Fatalf("%s: %d %v, want 422 naming %s", body, code, out, field)
		}
	}
	if code, _, _ := s.api("POST", "/api/jobs", firstToken, `{"type":`); code != 400 {
		t.Fatalf("malformed: %d", code)
	}
	out, _ := s.cli("queues", "--json")
	if strings.Contains(out, `"pending": 1`) || strings.Contains(out, `"scheduled": 1`) {
		t.Fatalf("a refused request queued something: %s", out)
	}

	code, acc, hdr := s.api("POST", "/api/jobs", secondToken, `{"type":"ops:noop","payload":{}}`)
	if code != 202 || acc["id"] == nil || acc["queue"] != "default" || acc["type"] != "ops:noop" || hdr.Get("Location") == "" {
		t.Fatalf("202: %d %v", code, acc)
	}
	if !strings.HasSuffix(acc["status_url"].(string), "/api/jobs/"+acc["id"].(string)) {
		t.Fatalf("status_url %v", acc["status_url"])
	}
	path := "/api/jobs/" + acc["id"].(string)
	st := s.waitJobState(secondToken, acc["id"].(string), "completed")
	if st["attempts"] != 1.0 || st["max_attempts"] != 3.0 || st["completed_at"] == nil {
		t.Fatalf("status: %v", st)
	}
	if code, _, _ := s.api("GET", path, "", ""); code != 401 {
		t.Fatalf("status without token: %d", code)
	}
	if code, _, _ := s.api("GET", "/api/jobs/01NOPE", firstToken, ""); code != 404 {
		t.Fatalf("unknown id: %d", code)
	}

	// A delayed job is scheduled, with its next run time.
	_, acc, _ = s.api("POST", "/api/jobs", firstToken, `{"type":"ops:noop","payload":{},"delay":"1m"}`)
	if acc["state"] != "scheduled" {
		t.Fatalf("delayed: %v", acc)
	}
	s.waitFor(5*time.Second, "the relay", func() bool {
		_, st = s.jobStatus(firstToken, acc["id"].(string))
		return st["state"] == "scheduled" && st["next_run_at"] != nil
	})
	next, _ := time.Parse(time.RFC3339Nano, st["next_run_at"].(string))
	if d := time.Until(next); d < 50*time.Second || d > 61*time.Second {
		t.Fatalf("next_run_at %v is not about a minute away", next)
	}
}

func TestJobAPIIdempotencyKey(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{toml: apiTOML, noWorker: true})
	body := `{"type":"ops:noop","payload":{}}`
	code, first, _ := s.api("POST", "/api/jobs", firstToken, body, "Idempotency-Key", "order-1001")
	if code != 202 {
		t.Fatalf("first: %d %v", code, first)
	}
	code, again, hdr := s.api("POST", "/api/jobs", firstToken, body, "Idempotency-Key", "order-1001")
	if code != 202 || again["id"] != first["id"] || hdr.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("repeat: %d %v (first %v)", code, again, first)
	}
	if code, out, _ := s.api("POST", "/api/jobs", firstToken, `{"type":"ops:noop","payload":{},"delay":"5s"}`, "Idempotency-Key", "order-1001"); code != 409 {
		t.Fatalf("same key, other body: %d %v", code, out)
	}
	// Keys are per token: another client's key of the same name is its own.
	if code, other, _ := s.api("POST", "/api/jobs", secondToken, body, "Idempotency-Key", "order-1001"); code != 202 || other["id"] == first["id"] {
		t.Fatalf("other token: %d %v", code, other)
	}
	// Ten concurrent retries of one request make one job.
	var wg sync.WaitGroup
	ids := make(chan any, 10)
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, out, _ := s.api("POST", "/api/jobs", firstToken, `{"type":"ops:noop","payload":{"n":1}}`, "Idempotency-Key", "burst")
			ids <- out["id"]
		}()
	}
	wg.Wait()
	close(ids)
	seen := map[any]bool{}
	for id := range ids {
		seen[id] = true
	}
	if len(seen) != 1 {
		t.Fatalf("10 concurrent requests with one key made %d jobs", len(seen))
	}
	time.Sleep(500 * time.Millisecond)
	if n := len(s.queued("default")); n != 3 {
		t.Fatalf("%d jobs queued, want 3 (order-1001, the other token's, burst)", n)
	}
}

// With callback_url, errand POSTs the outcome, signed, on completion and on
// final failure.
func TestJobAPICallbacks(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{toml: apiTOML + fastRetries})
	sink := startReceiver(t, nil)
	s.smtp.RejectRecipients("@bounce.test", 550, "no such mailbox")
	_, ok, _ := s.api("POST", "/api/jobs", firstToken, `{"type":"ops:noop","payload":{},"callback_url":"`+sink.URL+`/done","callback_token":"cb-token"}`)
	_, bad, _ := s.api("POST", "/api/jobs", firstToken, `{"type":"user:welcome_email","payload":{"user_id":1,"email":"x@bounce.test","first_name":"X"},"callback_url":"`+sink.URL+`/done","callback_token":"cb-token"}`)
	s.waitFor(20*time.Second, "two callbacks", func() bool { return sink.count() >= 2 })
	time.Sleep(500 * time.Millisecond)
	byID := map[any]map[string]any{}
	for _, c := range sink.outcomes() {
		byID[c["id"]] = c
	}
	var badlySigned []string
	for _, r := range sink.requests() {
		if r.header.Get("X-Errand-Callback-Token") != "cb-token" || verifyCallback(r.header.Get("X-Errand-Signature"), r.body, testCallbackSecret, time.Now()) != nil {
			badlySigned = append(badlySigned, string(r.body))
		}
	}
	if len(sink.outcomes()) != 2 || len(badlySigned) != 0 {
		t.Fatalf("callbacks %v, badly signed %v", sink.outcomes(), badlySigned)
	}
	if c := byID[ok["id"]]; c["state"] != "completed" || c["attempts"] != 1.0 || c["type"] != "ops:noop" {
		t.Fatalf("completed callback: %v", c)
	}
	if c := byID[bad["id"]]; c["state"] != "failed" || c["attempts"] != 1.0 || !strings.Contains(c["error"].(string), "550") {
		t.Fatalf("failed callback: %v", c)
	}
	// The callback token never reached Redis.
	for k, text := range s.redisText() {
		if strings.Contains(text, "cb-token") {
			t.Fatalf("the callback token is in Redis key %s", k)
		}
	}
}
