package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/jobs"
)

// This file is README's "adding a job" recipe, followed by a test: a new side
// effect — the payload with its Kind, Defaults and Validate, the handler
// holding its client, the handler's constructor — in one file, listed in
// jobs.All, and nothing else. Its queue is in no [queues] table.

// Greeting greets a customer through a greeting service.
type Greeting struct {
	Name string `json:"name"`
}

func (Greeting) Kind() string           { return "test:greeting" }
func (Greeting) Defaults() job.Defaults { return job.Defaults{Queue: "greetings", MaxAttempts: 2} }

func (g Greeting) Validate() error {
	if strings.TrimSpace(g.Name) == "" {
		return errors.New("name: must not be empty")
	}
	return nil
}

// greeter holds the greeting service's client, built once at start-up.
type greeter struct {
	url    string
	client *http.Client
}

// greetingService is where the greeting service is. A real job reads its
// service's settings from d.Config (its package's Config, e.g. d.Config.CRM)
// and checks them (Validate) here; the test points it at a local fake.
var greetingService string

func newGreeter(jobs.Deps) (*greeter, error) {
	if greetingService == "" {
		return nil, errors.New("greeting.url: must be set")
	}
	return &greeter{url: greetingService, client: &http.Client{Timeout: 5 * time.Second}}, nil
}

func (h *greeter) Work(ctx context.Context, g Greeting) error {
	body, _ := json.Marshal(g)
	req, err := http.NewRequestWithContext(ctx, "POST", h.url, strings.NewReader(string(body)))
	if err != nil {
		return errand.PermanentError(err)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return err // transient: retried after the backoff
	}
	resp.Body.Close()
	if resp.StatusCode >= 400 {
		return errand.Permanentf("greeting: HTTP %d", resp.StatusCode)
	}
	return nil
}

// The recipe works: a job type added in one file is queued with `errand
// enqueue` and POST /api/jobs, worked by `errand worker` on its own queue
// (weight 1, listed by `errand queues`), and completed.
func TestRecipeAJobTypeInOneFileRunsEndToEnd(t *testing.T) {
	var mu sync.Mutex
	var greeted []string
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var g Greeting
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &g)
		mu.Lock()
		greeted = append(greeted, g.Name)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(fake.Close)
	greetingService = fake.URL
	t.Cleanup(func() { greetingService = "" })
	// The one line a new job adds to jobs/jobs.go, made here for the test.
	all := jobs.All
	jobs.All = append(slices.Clip(all), jobs.Of[Greeting](newGreeter))
	t.Cleanup(func() { jobs.All = all })

	s := startStack(t, stackOptions{toml: apiTOML})
	out, err := s.cli("queues", "--json")
	var stats []map[string]any
	if err != nil || json.Unmarshal([]byte(out), &stats) != nil {
		t.Fatalf("errand queues --json: %v: %s", err, out)
	}
	if !slices.ContainsFunc(stats, func(q map[string]any) bool { return q["queue"] == "greetings" && q["weight"] == 1.0 }) {
		t.Fatalf("errand queues does not list greetings with weight 1: %s", out)
	}
	if len(s.worker.lines("worker started", "greetings:1")) != 1 {
		t.Fatalf("the worker does not take greetings by default:\n%s", s.worker.String())
	}

	s.waitDone(s.enqueue("test:greeting", `{"name":"Ada"}`))
	code, queued, _ := s.api("POST", "/api/jobs", firstToken, `{"type":"test:greeting","payload":{"name":"Grace"}}`)
	if code != http.StatusAccepted || queued["queue"] != "greetings" {
		t.Fatalf("POST /api/jobs: %d %v", code, queued)
	}
	id, _ := queued["id"].(string)
	s.waitFor(20*time.Second, "the API's job to complete", func() bool {
		_, st, _ := s.api("GET", "/api/jobs/"+id, firstToken, "")
		return st["state"] == "completed"
	})
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(greeted, []string{"Ada", "Grace"}) {
		t.Fatalf("greeted %v", greeted)
	}
	if _, err := s.cli("enqueue", "test:greeting", "--payload", `{"name":" "}`); err == nil {
		t.Fatal("an invalid greeting was queued")
	}
}
