package queue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/metrics"
	"github.com/errandhq/errand/internal/redistest"
	"github.com/hibiken/asynq"
)

// step is a job type whose handler does what its payload says.
type step struct {
	Do     string `json:"do"` // ok | fail | refuse | throttle | panic | hang | shutdown
	Secret string `json:"api_key,omitempty"`
}

func (step) Kind() string { return "test:step" }
func (step) Defaults() job.Defaults {
	return job.Defaults{Queue: "default", MaxAttempts: 2, Timeout: time.Second, Backoff: []time.Duration{time.Second}}
}

// endless stands for the escalation job: its attempts are not counted.
type endless struct{}

func (endless) Kind() string { return "test:endless" }
func (endless) Defaults() job.Defaults {
	return job.Defaults{Queue: "default", Unbounded: true, Backoff: []time.Duration{time.Second}}
}

// hooks records what the policy hands to its hooks.
type hooks struct {
	mu        sync.Mutex
	escalated []Ending
	called    []Ending
	refuse    bool // Escalate fails
}

func (h *hooks) escalate(_ context.Context, f Ending) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.refuse {
		return errors.New("redis down")
	}
	h.escalated = append(h.escalated, f)
	return nil
}

func (h *hooks) callBack(_ context.Context, o Ending) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.called = append(h.called, o)
	return nil
}

type policyHarness struct {
	p    *Policy
	h    *hooks
	m    *metrics.Recorder
	rs   *redistest.Server
	logs *bytes.Buffer
	n    int // jobs run
}

func newPolicyHarness(t *testing.T) *policyHarness {
	t.Helper()
	cfg, err := config.Load("", false, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := job.NewRegistry(cfg)
	hung := make(chan struct{})
	t.Cleanup(func() { close(hung) })
	job.Register(reg, func(ctx context.Context, s step) error {
		switch s.Do {
		case "fail":
			return errors.New("service down, api_key=" + s.Secret)
		case "refuse":
			return errand.Permanentf("refused")
		case "throttle":
			return errand.ThrottledError(errors.New("slow down"), 3*time.Second)
		case "panic":
			panic("lost state, token=" + s.Secret)
		case "hang":
			<-hung // ignores its context
		case "shutdown":
			return ctx.Err()
		}
		return nil
	})
	job.Register(reg, func(context.Context, endless) error { return errors.New("smtp down") })
	job.Register[unrun](reg, nil)
	if err := reg.Configure(nil); err != nil {
		t.Fatal(err)
	}
	rs := redistest.Start(t)
	logs := &bytes.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	h := &hooks{}
	m := metrics.NewRecorder(rs.Client(), log)
	p := NewPolicy(PolicyConfig{Registry: reg, Log: log, Metrics: m, Escalate: h.escalate, CallBack: h.callBack})
	return &policyHarness{p: p, h: h, m: m, rs: rs, logs: logs}
}

// unrun is registered without a handler, as in a process that only queues.
type unrun struct{}

func (unrun) Kind() string           { return "test:unrun" }
func (unrun) Defaults() job.Defaults { return job.Defaults{Queue: "default"} }

// run runs one attempt of a job of type typ, with callback, after retried
// attempts, as errand's fetcher would.
func (ph *policyHarness) run(ctx context.Context, typ, payload string, retried int) error {
	headers := map[string]string{headerCallback: "1", headerQueued: strconv.FormatInt(time.Now().UnixMilli(), 10)}
	ph.n++
	ctx = context.WithValue(ctx, metaKey{}, jobMeta{id: "J" + strconv.Itoa(ph.n), queue: "default", retried: retried})
	return ph.p.ProcessTask(ctx, asynq.NewTaskWithHeaders(typ, []byte(payload), headers))
}

// counts returns the metrics the attempts so far added, by Redis field.
func (ph *policyHarness) counts(t *testing.T) map[string]string {
	t.Helper()
	if err := ph.m.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	return ph.rs.Client().HGetAll(context.Background(), "errand:metrics").Val()
}

// A completed job is counted and called back as completed; nothing is
// escalated.
func TestPolicyCompletedIsCountedAndCalledBack(t *testing.T) {
	ph := newPolicyHarness(t)
	if err := ph.run(context.Background(), "test:step", `{"do":"ok"}`, 1); err != nil {
		t.Fatal(err)
	}
	if len(ph.h.called) != 1 || ph.h.called[0].State != "completed" || ph.h.called[0].Attempts != 2 || len(ph.h.escalated) != 0 {
		t.Fatalf("callbacks %+v, escalations %+v", ph.h.called, ph.h.escalated)
	}
	if c := ph.counts(t); c["processed|default|test:step"] != "1" || c["duration_count|test:step"] != "1" {
		t.Fatalf("counts %v", c)
	}
}

// A failure with attempts left is retried: counted as a retry, neither
// escalated nor called back.
func TestPolicyRetryIsNeitherEscalatedNorCalledBack(t *testing.T) {
	ph := newPolicyHarness(t)
	err := ph.run(context.Background(), "test:step", `{"do":"fail"}`, 0)
	v := verdictOf(err)
	if v == nil || v.final || !v.counts || v.wait != time.Second {
		t.Fatalf("verdict %+v", v)
	}
	if len(ph.h.called)+len(ph.h.escalated) != 0 {
		t.Fatalf("callbacks %+v, escalations %+v", ph.h.called, ph.h.escalated)
	}
	if c := ph.counts(t); c["retried|default|test:step"] != "1" {
		t.Fatalf("counts %v", c)
	}
	if !strings.Contains(ph.logs.String(), "job failed, will retry") {
		t.Fatalf("log: %s", ph.logs)
	}
}

// A final failure is escalated and called back with the same redacted
// failure, logged at ERROR, and counted as failed and escalated.
func TestPolicyFinalFailureIsEscalatedAndCalledBack(t *testing.T) {
	ph := newPolicyHarness(t)
	err := ph.run(context.Background(), "test:step", `{"do":"fail","api_key":"k-secret-1"}`, 1)
	if v := verdictOf(err); v == nil || !v.final || !errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("verdict %+v", v)
	}
	if len(ph.h.escalated) != 1 || len(ph.h.called) != 1 {
		t.Fatalf("callbacks %+v, escalations %+v", ph.h.called, ph.h.escalated)
	}
	f, o := ph.h.escalated[0], ph.h.called[0]
	if f != o || f.State != "failed" || f.Attempts != 2 || f.MaxAttempts != 2 || f.Class != "transient" || f.FailedAt.IsZero() || f.QueuedAt.IsZero() {
		t.Fatalf("escalated %+v, called back %+v", f, o)
	}
	for where, text := range map[string]string{"error": f.Error, "payload": f.Payload, "log": ph.logs.String(), "stored error": err.Error()} {
		if strings.Contains(text, "k-secret-1") {
			t.Errorf("the %s shows the secret: %s", where, text)
		}
	}
	if !strings.Contains(ph.logs.String(), "job failed for good") {
		t.Fatalf("log: %s", ph.logs)
	}
	if c := ph.counts(t); c["failed|default|test:step"] != "1" || c["escalated|default|test:step"] != "1" {
		t.Fatalf("counts %v", c)
	}
}

// An escalation that cannot be queued leaves the failure in the log, in
// full, and is not counted as escalated.
func TestPolicyEscalationNotQueuedIsLogged(t *testing.T) {
	ph := newPolicyHarness(t)
	ph.h.refuse = true
	_ = ph.run(context.Background(), "test:step", `{"do":"refuse"}`, 0)
	if !strings.Contains(ph.logs.String(), "this log line is the escalation") || !strings.Contains(ph.logs.String(), "queue_error=\"redis down\"") {
		t.Fatalf("log: %s", ph.logs)
	}
	if c := ph.counts(t); c["failed|default|test:step"] != "1" || c["escalated|default|test:step"] != "" {
		t.Fatalf("counts %v", c)
	}
}

// A panic and an overrun become failures the policy classifies; the panic's
// value is redacted and its stack stays in the log.
func TestPolicyPanicAndTimeoutAreFailures(t *testing.T) {
	ph := newPolicyHarness(t)
	err := ph.run(context.Background(), "test:step", `{"do":"panic","api_key":"k-secret-2"}`, 0)
	if v := verdictOf(err); v == nil || !strings.HasPrefix(v.Error(), "panic: lost state") || strings.Contains(v.Error(), "k-secret-2") || v.final {
		t.Fatalf("panic: %v", err)
	}
	if !strings.Contains(ph.logs.String(), "job panicked") || !strings.Contains(ph.logs.String(), "middleware_test.go") {
		t.Fatalf("log: %s", ph.logs)
	}
	err = ph.run(context.Background(), "test:step", `{"do":"hang"}`, 0)
	if v := verdictOf(err); v == nil || v.class != errand.Transient || !strings.HasPrefix(v.Error(), "timed out after 1s") {
		t.Fatalf("overrun: %v", err)
	}
}

// A throttled failure uses no attempt and waits what the service asked.
func TestPolicyThrottledUsesNoAttempt(t *testing.T) {
	ph := newPolicyHarness(t)
	v := verdictOf(ph.run(context.Background(), "test:step", `{"do":"throttle"}`, 1))
	if v == nil || v.counts || v.final || v.wait != 3*time.Second || IsFailure(v) {
		t.Fatalf("verdict %+v", v)
	}
}

// Jobs that must not run fail for good without running: a type without a
// handler here (permanent, one attempt used), and a job whose last attempt a
// lost worker used (not counted again, its attempts as they were).
func TestPolicyRefusesJobsThatMustNotRun(t *testing.T) {
	ph := newPolicyHarness(t)
	for _, tc := range []struct {
		typ, want string
		retried   int
		counts    bool
		attempts  int
	}{
		{"test:unknown", `unknown job type "test:unknown"`, 0, true, 1},
		{"test:unrun", `no handler for job type "test:unrun"`, 0, true, 1},
		{"test:step", "all 2 attempts used", 2, false, 2},
	} {
		ph.h.escalated = nil
		v := verdictOf(ph.run(context.Background(), tc.typ, `{"do":"ok"}`, tc.retried))
		if v == nil || !v.final || v.counts != tc.counts || !strings.Contains(v.Error(), tc.want) {
			t.Fatalf("%s: verdict %+v", tc.typ, v)
		}
		if len(ph.h.escalated) != 1 || ph.h.escalated[0].Attempts != tc.attempts {
			t.Fatalf("%s: escalated %+v", tc.typ, ph.h.escalated)
		}
	}
	// Never ran: no duration is recorded.
	if c := ph.counts(t); c["failed|default|test:unknown"] != "1" || c["duration_count|test:unknown"] != "" {
		t.Fatalf("counts %v", c)
	}
}

// A job stopped by the worker's shutdown is no attempt: its bare error goes
// back, and nothing is counted, escalated or called back.
func TestPolicyShutdownIsNoAttempt(t *testing.T) {
	ph := newPolicyHarness(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := ph.run(ctx, "test:step", `{"do":"shutdown"}`, 1)
	if !errors.Is(err, context.Canceled) || verdictOf(err) != nil {
		t.Fatalf("got %v", err)
	}
	if len(ph.h.called)+len(ph.h.escalated) != 0 || len(ph.counts(t)) != 0 {
		t.Fatalf("callbacks %+v, escalations %+v, counts %v", ph.h.called, ph.h.escalated, ph.counts(t))
	}
}

// An escalation that failed for good is not escalated again, nor called
// back: the log is its last resort, with the whole digest.
func TestPolicyEscalationThatGaveUpIsOnlyLogged(t *testing.T) {
	ph := newPolicyHarness(t)
	headers := map[string]string{headerCallback: "1", headerQueued: strconv.FormatInt(time.Now().Add(-48*time.Hour).UnixMilli(), 10)}
	ctx := context.WithValue(context.Background(), metaKey{}, jobMeta{id: "E1", queue: "default"})
	err := ph.p.ProcessTask(ctx, asynq.NewTaskWithHeaders("test:endless", []byte(`{"failures":["all of them"]}`), headers))
	if v := verdictOf(err); v == nil || !v.final {
		t.Fatalf("verdict %v", err)
	}
	if len(ph.h.called)+len(ph.h.escalated) != 0 {
		t.Fatalf("callbacks %+v, escalations %+v", ph.h.called, ph.h.escalated)
	}
	logs := ph.logs.String()
	if !strings.Contains(logs, "escalation gave up") || !strings.Contains(logs, "all of them") || strings.Contains(logs, "job failed for good") {
		t.Fatalf("log: %s", logs)
	}
	if c := ph.counts(t); c["failed|default|test:endless"] != "1" {
		t.Fatalf("counts %v", c)
	}
}

// The middlewares run in the order given, the first outermost.
func TestChainOrder(t *testing.T) {
	var got []string
	mark := func(name string) Middleware {
		return func(next Handler) Handler {
			return func(ctx context.Context, a *Attempt) error {
				got = append(got, name+" in")
				err := next(ctx, a)
				got = append(got, name+" out")
				return err
			}
		}
	}
	h := chain(func(context.Context, *Attempt) error { got = append(got, "work"); return nil }, mark("a"), mark("b"))
	_ = h(context.Background(), &Attempt{})
	if fmt.Sprint(got) != "[a in b in work b out a out]" {
		t.Fatalf("order %v", got)
	}
}
