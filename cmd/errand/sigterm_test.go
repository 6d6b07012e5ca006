package main

import (
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SIGTERM with jobs in flight: the running jobs finish, the worker exits
// within shutdown_timeout, the jobs it had not started stay queued, and a new
// worker delivers every one. Nothing is lost; nothing is sent twice.
func TestWorkerSIGTERMLosesNothing(t *testing.T) {
	bin := errandBinary(t)
	s := startStack(t, stackOptions{noWorker: true, toml: welcomeAtOnce + `
[worker]
shutdown_timeout = "10s"
concurrency = 4
`})
	s.smtp.SetLatency(300 * time.Millisecond) // each email takes a while: jobs are in flight
	const n = 40
	for i := range n {
		payload := fmt.Sprintf(`{"user_id":%d,"email":"u%d@shop.test","first_name":"U%d"}`, i, i, i)
		s.enqueue("user:welcome_email", payload)
	}
	startWorker := func() (*exec.Cmd, *syncBuffer) { return startBinary(t, bin, "worker", "--config", s.config) }
	w1, log1 := startWorker()
	s.waitFor(20*time.Second, "a few emails", func() bool { return len(s.smtp.Messages()) >= 6 })
	sent := time.Now()
	if err := w1.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- w1.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("worker exited with %v after SIGTERM\n%s", err, log1.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("worker still running 15 s after SIGTERM (shutdown_timeout 10 s)\n%s", log1.String())
	}
	took := time.Since(sent)
	delivered := len(s.smtp.Messages())
	t.Logf("SIGTERM: worker exited in %s with %d of %d emails delivered", took.Round(time.Millisecond), delivered, n)
	if delivered >= n {
		t.Fatalf("all %d jobs were done before the signal; the test proves nothing", n)
	}
	if !strings.Contains(log1.String(), "worker stopped") {
		t.Fatalf("no graceful stop in the log:\n%s", log1.String())
	}
	startWorker()
	s.waitFor(60*time.Second, "every email", func() bool { return len(s.smtp.Messages()) >= n })
	time.Sleep(time.Second)
	seen := map[string]int{}
	for _, m := range s.smtp.Messages() {
		seen[m.To[0]]++
	}
	dups := 0
	for to, c := range seen {
		if c > 1 {
			dups += c - 1
			t.Errorf("%s got %d emails", to, c)
		}
	}
	t.Logf("after restart: %d distinct recipients of %d, %d duplicates, failed list %d", len(seen), n, dups, len(s.failed()))
	if len(seen) != n {
		t.Fatalf("%d of %d emails delivered: jobs were lost", len(seen), n)
	}
	if f := s.failed(); len(f) != 0 {
		t.Fatalf("failed list: %v", f)
	}
}

// A job still running when shutdown_timeout ends is put back, not lost and
// not counted as an attempt: the worker exits on time and the next one
// delivers it.
func TestWorkerSIGTERMPutsBackJobsPastShutdownTimeout(t *testing.T) {
	s, w, log := slowJobInFlight(t, 6*time.Second, `
[worker]
shutdown_timeout = "1s"
`)
	sent := time.Now()
	_ = w.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- w.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("worker still running 10 s after SIGTERM with shutdown_timeout 1 s\n%s", log.String())
	}
	took := time.Since(sent)
	if took > 4*time.Second {
		t.Fatalf("worker took %s to stop; shutdown_timeout is 1 s", took)
	}
	s.smtp.SetLatency(0)
	startBinary(t, errandBinary(t), "worker", "--config", s.config)
	s.smtp.WaitFor(t, 1, 30*time.Second)
	time.Sleep(time.Second)
	if n := len(s.smtp.Messages()); n != 1 {
		t.Fatalf("%d deliveries, want 1", n)
	}
	if len(s.failed()) != 0 {
		t.Fatal("the interrupted job ended in the failed list")
	}
	t.Logf("SIGTERM with a job running past shutdown_timeout (1 s): exited in %s; the job was put back and delivered once by the next worker", took.Round(time.Millisecond))
}

// A second signal while the worker waits for running jobs exits at once; the
// job in flight is not lost (its lease runs out and it is worked again).
func TestWorkerSecondSignalExitsAtOnce(t *testing.T) {
	s, w, log := slowJobInFlight(t, 20*time.Second, `
[worker]
shutdown_timeout = "30s"
`)
	_ = w.Process.Signal(syscall.SIGTERM)
	s.waitFor(5*time.Second, "the graceful stop to begin", func() bool { return strings.Contains(log.String(), "stopping") })
	second := time.Now()
	_ = w.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- w.Wait() }()
	select {
	case err := <-done:
		took := time.Since(second)
		if err == nil {
			t.Fatal("a forced exit reported success")
		}
		if took > 2*time.Second {
			t.Fatalf("the second signal took %s to stop the worker", took)
		}
		if !strings.Contains(log.String(), "second signal") {
			t.Fatalf("no word of the second signal:\n%s", log.String())
		}
		if strings.Contains(log.String(), "panic") || w.ProcessState.ExitCode() != 1 {
			t.Fatalf("want a clean exit with status 1, got %v:\n%s", err, log.String())
		}
		t.Logf("second signal: exited in %s (%v) with a job in flight and 30 s of shutdown_timeout left", took.Round(time.Millisecond), err)
	case <-time.After(10 * time.Second):
		t.Fatalf("the worker ignored the second signal\n%s", log.String())
	}
}
