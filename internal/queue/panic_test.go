package queue_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/queue"
	"github.com/errandhq/errand/internal/redistest"
	"github.com/errandhq/errand/jobs"
	"github.com/hibiken/asynq"
)

// explode is a job type whose handler panics with a value that names a
// credential.
type explode struct{}

func (explode) Kind() string { return "test:explode" }
func (explode) Defaults() job.Defaults {
	return job.Defaults{Queue: "emails", MaxAttempts: 1}
}

// lockedBuffer is a log destination the test reads while the worker writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A handler that panics leaves as its error only "panic: <value>", redacted:
// the stack, which tells an outsider the program's insides, goes to the
// worker's log at ERROR with the job's id and type, and nowhere else (not the
// stored error that GET /api/jobs shows, not the escalation).
func TestPanicStoresValueNotStack(t *testing.T) {
	rs := redistest.Start(t)
	rs.Client().AddHook(redistest.SlotCheck(t))
	cfg, err := config.Load("", false, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Redis.Addr = rs.Addr()
	cfg.Escalation.Window = time.Second
	reg := job.NewRegistry(cfg)
	job.Register(reg, func(context.Context, explode) error {
		panic(fmt.Sprintf("lost state; retry with token=%s", "panic-secret-token"))
	})
	var mu sync.Mutex
	var escalated []jobs.Failure
	job.Register(reg, func(_ context.Context, d jobs.Digest) error {
		mu.Lock()
		escalated = append(escalated, d.Failures...)
		mu.Unlock()
		return nil
	})
	if err := reg.Configure(cfg.Jobs); err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	policy := queue.NewPolicy(queue.PolicyConfig{Registry: reg, Log: log,
		Escalate: jobs.NewEscalator(reg, queue.NewGroups(reg, rs.Client())).Escalate})
	w, err := queue.NewWorker(cfg, rs.Client(), log, queue.WorkerOptions{Policy: policy, Aggregate: jobs.MergeDigests})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker: %v", err)
		}
	})
	e, err := queue.NewClient(reg, rs.Client()).Push(context.Background(), explode{})
	if err != nil {
		t.Fatal(err)
	}
	ins := asynq.NewInspectorFromRedisClient(rs.Client())
	var info *asynq.TaskInfo
	waitUntil(t, 15*time.Second, "the job in the failed list", func() bool {
		info, err = ins.GetTaskInfo("emails", e.ID)
		return err == nil && info.State == asynq.TaskStateArchived
	})
	waitUntil(t, 15*time.Second, "the escalation", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(escalated) == 1
	})
	mu.Lock()
	shown := map[string]string{"stored error": info.LastErr, "escalated error": escalated[0].Error}
	mu.Unlock()
	for where, text := range shown {
		if !strings.HasPrefix(text, "panic: lost state") {
			t.Errorf("%s %q: want panic: <value>", where, text)
		}
		for _, leak := range []string{"goroutine ", ".go:", "panic-secret-token", "runtime/debug"} {
			if strings.Contains(text, leak) {
				t.Errorf("%s shows %q: %q", where, leak, text)
			}
		}
	}
	var line string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, `msg="job panicked"`) {
			line = l
		}
	}
	for _, want := range []string{"level=ERROR", "job_id=" + e.ID, "type=test:explode", "goroutine ", "panic_test.go:"} {
		if !strings.Contains(line, want) {
			t.Errorf("the log line of the panic lacks %q: %s", want, line)
		}
	}
	if strings.Contains(logs.String(), "panic-secret-token") {
		t.Error("the log shows the credential named in the panic")
	}
}
