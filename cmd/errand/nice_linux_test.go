package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The worker runs at a lower CPU priority (worker.nice, 10 by default), every
// thread of it, so that on a shared machine the web process gets the CPU
// first.
func TestWorkerRunsAtLowerPriority(t *testing.T) {
	t.Parallel()
	bin := errandBinary(t)
	s := startStack(t, stackOptions{noWorker: true})
	cmd, log := startBinary(t, bin, "worker", "--config", s.config)
	s.waitFor(20*time.Second, "the worker to start", func() bool { return strings.Contains(log.String(), "worker started") })
	tasks, err := filepath.Glob(filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "task", "*", "stat"))
	if err != nil || len(tasks) == 0 {
		t.Fatalf("no threads found: %v", err)
	}
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the thread ended meanwhile
		}
		// Fields after the command name (in parentheses): nice is the 17th.
		fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(fields) < 17 || fields[16] != "10" {
			t.Fatalf("thread %s runs at nice %v, want 10", f, fields[16])
		}
	}
	t.Logf("%d threads, all at nice 10", len(tasks))
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
}
