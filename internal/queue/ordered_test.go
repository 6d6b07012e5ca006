package queue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/metrics"
	"github.com/errandhq/errand/internal/redistest"
	"github.com/hibiken/asynq"
)

// inLine is an ordered job type: one user's jobs run one at a time.
type inLine struct {
	User int    `json:"user"`
	Fail bool   `json:"fail,omitempty"`
	Note string `json:"note,omitempty"`
}

func (inLine) Kind() string { return "test:in_line" }
func (inLine) Defaults() job.Defaults {
	return job.Defaults{Queue: "crm", MaxAttempts: 2, Backoff: []time.Duration{time.Second}, OrderBy: "user"}
}

// The ordered middleware against a real Redis: a job runs only after every
// earlier job of its key has ended, waits without using an attempt, and a
// retry keeps its place while a final failure gives it up.
func TestOrderedJobsWaitTheirTurn(t *testing.T) {
	ctx := context.Background()
	cfg, err := config.Load("", false, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := job.NewRegistry(cfg)
	var ran []string
	job.Register(reg, func(_ context.Context, a inLine) error {
		ran = append(ran, a.Note)
		if a.Fail {
			return errors.New("crm down")
		}
		return nil
	})
	if err := reg.Configure(nil); err != nil {
		t.Fatal(err)
	}
	rs := redistest.Start(t)
	rs.Client().AddHook(redistest.SlotCheck(t))
	m := metrics.NewRecorder(rs.Client(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	p := NewPolicy(PolicyConfig{Registry: reg, Metrics: m, Redis: rs.Client(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	c := NewClient(reg, rs.Client())
	push := func(a inLine) job.Envelope {
		t.Helper()
		e, err := c.Push(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	first := push(inLine{User: 1, Fail: true, Note: "1a"})
	second := push(inLine{User: 1, Note: "1b"})
	third := push(inLine{User: 1, Note: "1c"})
	other := push(inLine{User: 2, Note: "2a"})
	// run runs one attempt as the fetcher would, with the headers the
	// client stored.
	run := func(e job.Envelope, retried int) error {
		t.Helper()
		stored, err := c.task(e, nil)
		if err != nil {
			t.Fatal(err)
		}
		rctx := context.WithValue(ctx, metaKey{}, jobMeta{id: e.ID, queue: e.Queue, retried: retried})
		return p.ProcessTask(rctx, asynq.NewTaskWithHeaders(e.Type, e.Payload, stored.Headers))
	}
	waits := func(e job.Envelope, ahead int) {
		t.Helper()
		before := len(ran)
		err := run(e, 0)
		v := verdictOf(err)
		if v == nil || v.counts || v.final || v.class != errand.Throttled || v.wait != time.Duration(ahead)*orderStep {
			t.Fatalf("%s: want a wait of %d step(s), no attempt used; got %v (%+v)", e.ID, ahead, err, v)
		}
		if len(ran) != before {
			t.Fatalf("%s ran before its turn: %v", e.ID, ran)
		}
	}
	waits(second, 1)
	waits(third, 2)
	// Another user's job is not held by user 1's line.
	if err := run(other, 0); err != nil {
		t.Fatal(err)
	}
	// The first fails with an attempt left: it keeps its place.
	if v := verdictOf(run(first, 0)); v == nil || v.final {
		t.Fatalf("first attempt: %+v", v)
	}
	waits(second, 1)
	// Its last attempt fails for good: the line moves on.
	if v := verdictOf(run(first, 1)); v == nil || !v.final {
		t.Fatalf("last attempt: %+v", v)
	}
	if err := run(second, 0); err != nil {
		t.Fatal(err)
	}
	if err := run(third, 0); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(ran) != "[2a 1a 1a 1b 1c]" {
		t.Fatalf("ran %v", ran)
	}
	// Waiting is not an attempt: only the five runs were measured.
	if err := m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	counts := rs.Client().HGetAll(ctx, "errand:metrics").Val()
	if counts["duration_count|test:in_line"] != "5" || counts["retried|crm|test:in_line"] != "1" {
		t.Fatalf("counts %v", counts)
	}

	// A job queued by another program, without a sequence, runs unordered.
	foreign := job.Envelope{ID: "foreign-1", Type: "test:in_line", Queue: "crm", Payload: []byte(`{"user":3,"note":"3a"}`)}
	if err := p.ProcessTask(context.WithValue(ctx, metaKey{}, jobMeta{id: foreign.ID, queue: "crm"}),
		asynq.NewTaskWithHeaders(foreign.Type, foreign.Payload, map[string]string{headerOrder: "3"})); err != nil {
		t.Fatal(err)
	}
	if ran[len(ran)-1] != "3a" {
		t.Fatalf("a job without a sequence did not run: %v", ran)
	}
}
