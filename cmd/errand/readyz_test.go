package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A Redis that hangs (here a real redis-server stopped with SIGSTOP: it
// accepts connections and never answers) makes /readyz answer 503 naming
// Redis alone, within its 2 s budget: the database, which answers, is not
// blamed for the time Redis took. Once Redis answers again, so does /readyz.
func TestReadyzNamesOnlyRedisWhenItHangs(t *testing.T) {
	s := startStack(t, stackOptions{noWorker: true})
	info, err := s.redis.Client().Info(context.Background(), "server").Result()
	if err != nil {
		t.Fatal(err)
	}
	pid := 0
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			pid, _ = strconv.Atoi(v)
		}
	}
	if pid == 0 {
		t.Fatalf("no process_id in INFO server:\n%s", info)
	}
	resume := func() { _ = syscall.Kill(pid, syscall.SIGCONT) }
	t.Cleanup(resume) // before the stack's own cleanup stops the server
	if code, body := s.get("/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz with everything up: %d %s", code, body)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	for i := range 3 { // a load balancer asks again and again
		start := time.Now()
		code, body := s.get("/readyz")
		took := time.Since(start)
		var out map[string]string
		if err := json.Unmarshal([]byte(body), &out); err != nil {
			t.Fatalf("/readyz: %d %q", code, body)
		}
		t.Logf("/readyz %d with Redis hanging: %d %s in %s", i+1, code, strings.TrimSpace(body), took.Round(time.Millisecond))
		if code != http.StatusServiceUnavailable || out["redis"] != "unreachable" || out["database"] != "ok" || len(out) != 2 {
			t.Fatalf("/readyz with Redis hanging: %d %s, want 503 naming Redis alone", code, body)
		}
		// The budget is 2 s; the bound leaves the loaded machine room.
		if took > 4*time.Second {
			t.Fatalf("/readyz took %s with a 2 s budget", took)
		}
	}
	if len(s.serve.lines("level=WARN", "readyz: redis does not answer", "no answer within 2s")) == 0 {
		t.Errorf("the hang is not in the log at WARN:\n%s", s.serve.String())
	}
	if n := len(s.serve.lines("readyz: database")); n != 0 {
		t.Errorf("the database was blamed %d times:\n%s", n, s.serve.String())
	}
	resume()
	s.waitFor(15*time.Second, "/readyz to answer 200 again", func() bool {
		code, _ := s.get("/readyz")
		return code == http.StatusOK
	})
}
