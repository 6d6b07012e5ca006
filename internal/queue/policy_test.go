package queue

import (
	"errors"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/job"
	"github.com/hibiken/asynq"
)

func testDef() *job.Definition {
	return &job.Definition{
		Type: "t", Queue: "q", MaxAttempts: 3, Timeout: time.Minute,
		Backoff: []time.Duration{10 * time.Second, time.Minute}, ThrottleDeadline: 24 * time.Hour,
	}
}

func TestJudge(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	p := &Policy{now: func() time.Time { return now }}
	boom := errors.New("boom")
	for _, tc := range []struct {
		name     string
		retried  int
		queuedAt time.Time
		err      error
		counts   bool
		final    bool
		wait     time.Duration
	}{
		{"transient first attempt", 0, now, boom, true, false, 10 * time.Second},
		{"transient second attempt", 1, now, boom, true, false, time.Minute},
		{"transient third attempt is final", 2, now, boom, true, true, time.Minute},
		{"permanent is final at once", 0, now, errand.PermanentError(boom), true, true, 0},
		{"throttled does not count", 2, now, errand.ThrottledError(boom, 30*time.Second), false, false, 30 * time.Second},
		{"throttled past the deadline is final", 0, now.Add(-23*time.Hour - 59*time.Minute), errand.ThrottledError(boom, 2*time.Minute), false, true, 2 * time.Minute},
		{"throttled without a hint waits the first backoff", 0, now, errand.ThrottledError(boom, 0), false, false, 10 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := p.judge(testDef(), tc.retried, tc.queuedAt, tc.err)
			if v.counts != tc.counts || v.final != tc.final || v.wait != tc.wait {
				t.Fatalf("got counts=%v final=%v wait=%s, want counts=%v final=%v wait=%s", v.counts, v.final, v.wait, tc.counts, tc.final, tc.wait)
			}
			if IsFailure(v) != tc.counts {
				t.Fatalf("IsFailure = %v", IsFailure(v))
			}
			if errors.Is(v, asynq.SkipRetry) != tc.final {
				t.Fatalf("SkipRetry wrapped = %v, want %v", errors.Is(v, asynq.SkipRetry), tc.final)
			}
			if !errors.Is(v, boom) {
				t.Fatal("the verdict lost the original error")
			}
		})
	}
}

func TestJudgeUnboundedGrowsAndStopsAtDeadline(t *testing.T) {
	now := time.Now()
	p := &Policy{now: func() time.Time { return now }}
	def := testDef()
	def.Unbounded = true
	def.Backoff = []time.Duration{time.Second, time.Minute}
	if v := p.judge(def, 0, now, errand.PermanentError(errors.New("smtp 550"))); v.final || v.counts || v.wait != time.Second {
		t.Fatalf("fresh: %+v", v)
	}
	if v := p.judge(def, 0, now.Add(-20*time.Second), errors.New("x")); v.wait != 10*time.Second {
		t.Fatalf("after 20s: wait %s, want 10s", v.wait)
	}
	if v := p.judge(def, 0, now.Add(-time.Hour), errors.New("x")); v.wait != time.Minute {
		t.Fatalf("after 1h: wait %s, want the 1m cap", v.wait)
	}
	if v := p.judge(def, 0, now.Add(-25*time.Hour), errors.New("x")); !v.final {
		t.Fatalf("past the deadline: not final")
	}
}

func TestParseQueues(t *testing.T) {
	conf := map[string]int{"emails": 3, "crm": 2, "critical": 6}
	qs, err := ParseQueues("emails,crm", conf, false)
	if err != nil {
		t.Fatal(err)
	}
	if !qs.Strict || qs.Weights["emails"] <= qs.Weights["crm"] || qs.Order[0] != "emails" {
		t.Fatalf("order: %+v", qs)
	}
	qs, err = ParseQueues("emails:1,crm:4", conf, false)
	if err != nil {
		t.Fatal(err)
	}
	if qs.Strict || qs.Weights["emails"] != 1 || qs.Weights["crm"] != 4 || qs.Order[0] != "crm" {
		t.Fatalf("weights: %+v", qs)
	}
	qs, err = ParseQueues("", conf, true)
	if err != nil {
		t.Fatal(err)
	}
	if !qs.Strict || len(qs.Weights) != 3 || qs.Order[0] != "critical" {
		t.Fatalf("default: %+v", qs)
	}
	for _, bad := range []string{"nope", "emails,emails", "emails:0", "emails:x", ",crm"} {
		if _, err := ParseQueues(bad, conf, false); err == nil {
			t.Errorf("--queues %q: want an error", bad)
		}
	}
}
