package main

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// noCRM empties [crm] over the stack's config.toml, as a deploy that forgot
// it would.
var noCRM = []string{"ERRAND_CRM__CLIENT_ID=", "ERRAND_CRM__CLIENT_SECRET="}

// A worker that would run a job whose service is not configured stops at
// start, in one line naming the job, its queue and the keys: not one failed
// job per registration, found later. A worker on other queues starts without
// those settings, and serve and the CLI, which only queue, need none.
func TestWorkerStopsAtStartWithoutTheSettingsOfItsJobs(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{noWorker: true})

	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	err := run(ctx, []string{"worker", "--config", s.config}, noCRM, &out, &out)
	timedOut := ctx.Err() != nil
	cancel()
	if err == nil || timedOut {
		t.Fatalf("errand worker without [crm]: %v (it should stop at once with an error)\n%s", err, out.String())
	}
	line := "errand: " + err.Error() // what main prints
	for _, want := range []string{"errand: worker: user:sync_crm (queue crm): ", "crm.client_id: must be set", "crm.client_secret: must be set", "--queues"} {
		if !strings.Contains(line, want) {
			t.Errorf("errand worker says %q; want it to say %q", line, want)
		}
	}
	if strings.Contains(line, "\n") || strings.Contains(out.String(), "worker started") {
		t.Errorf("errand worker says %q, printed:\n%s", line, out.String())
	}
	s.noSecrets(line, out.String())

	// Without [crm], serve and the CLI still queue user:sync_crm.
	out.Reset()
	if err := run(context.Background(), []string{"enqueue", "--config", s.config, "user:sync_crm", "--payload", `{"email":"ada@shop.test","changed":{"first_name":"Ada"}}`},
		noCRM, &out, &out); err != nil || !strings.HasPrefix(out.String(), "queued user:sync_crm ") {
		t.Fatalf("errand enqueue without [crm]: %v\n%s", err, out.String())
	}
	serveAddr := freeAddr(t)
	serveLog := &syncBuffer{}
	stopServe := runInBackground(t, []string{"serve", "--config", s.config, "--addr", serveAddr}, noCRM, serveLog)
	s.waitFor(15*time.Second, "serve without [crm] to answer /healthz", func() bool {
		resp, err := http.Get("http://" + serveAddr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	stopServe()

	// A worker on the other queues starts, and runs their jobs.
	stopWorker := runInBackground(t, []string{"worker", "--config", s.config, "--queues", "emails,critical"}, noCRM, s.worker)
	s.waitFor(15*time.Second, "the worker on emails and critical to start", func() bool { return len(s.worker.lines("worker started")) > 0 })
	if code, _ := s.post("/api/users", registration("ada@shop.test"), nil); code != http.StatusCreated {
		t.Fatalf("registration: %d", code)
	}
	s.waitFor(20*time.Second, "the welcome email", func() bool { return len(s.mailTo("ada@shop.test")) == 1 })
	stopWorker()
}

// runInBackground runs an errand command with environ until the returned
// stop is called, or the test ends; the command must then end without error.
func runInBackground(t *testing.T, args, environ []string, log *syncBuffer) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, environ, log, log) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("errand %s: %v", args[0], err)
			}
		case <-time.After(40 * time.Second):
			t.Errorf("errand %s did not stop", args[0])
		}
	}
	t.Cleanup(stop)
	return stop
}
