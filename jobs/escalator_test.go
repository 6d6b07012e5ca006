package jobs

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/queue"
	"github.com/errandhq/errand/internal/redistest"
	"github.com/hibiken/asynq"
)

func testRegistry(t *testing.T) *job.Registry {
	t.Helper()
	cfg, err := config.Load("", false, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := job.NewRegistry(cfg)
	Register(reg)
	if err := reg.Configure(cfg.Jobs); err != nil {
		t.Fatal(err)
	}
	return reg
}

var ending = queue.Ending{
	ID: "J1", Type: "user:welcome_email", Queue: "emails", State: "failed",
	Attempts: 3, MaxAttempts: 3, Class: "transient", Error: "smtp: 451",
	Payload:  `{"email":"ada@shop.test"}`,
	QueuedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), FailedAt: time.Date(2026, 1, 2, 3, 9, 5, 0, time.UTC),
}

// The policy's "job failed for good" line and the escalation's own lines
// (no recipients, email not sent) carry the same details.
func TestFailureLogsWhatThePolicyLogs(t *testing.T) {
	if got, want := failureOf(ending).LogAttrs(), ending.LogAttrs(); !reflect.DeepEqual(got, want) {
		t.Fatalf("digest entry logs %v,\nthe policy logs %v", got, want)
	}
}

// Final failures go into the escalation group on the critical queue, one
// digest entry each, and the worker's aggregator merges them into one
// digest; a payload that does not decode is left out.
func TestEscalatorGroupsFailuresIntoOneDigest(t *testing.T) {
	rs := redistest.Start(t)
	reg := testRegistry(t)
	esc := NewEscalator(reg, queue.NewGroups(reg, rs.Client()))
	second := ending
	second.ID = "J2"
	for _, f := range []queue.Ending{ending, second} {
		if err := esc.Escalate(context.Background(), f); err != nil {
			t.Fatal(err)
		}
	}
	tasks, err := asynq.NewInspectorFromRedisClient(rs.Client()).ListAggregatingTasks("critical", escalationGroup)
	if err != nil || len(tasks) != 2 {
		t.Fatalf("%d tasks aggregating (%v), want 2", len(tasks), err)
	}
	payloads := [][]byte{tasks[0].Payload, []byte("not json"), tasks[1].Payload}
	var d Digest
	if err := json.Unmarshal(MergeDigests(escalationGroup, payloads), &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Failures) != 2 || d.Failures[0].ID == d.Failures[1].ID || d.Failures[0].Payload != ending.Payload || !d.Failures[0].FailedAt.Equal(ending.FailedAt) {
		t.Fatalf("digest %+v", d)
	}
	if tasks[0].Type != EscalateType {
		t.Fatalf("type %s", tasks[0].Type)
	}
}

// A job reported twice (a worker lost after finishing it) calls back once;
// a completed job's report carries no error.
func TestCallbacksReportEachEndingOnce(t *testing.T) {
	rs := redistest.Start(t)
	reg := testRegistry(t)
	cb := NewCallbacks(reg, queue.NewClient(reg, rs.Client()))
	done := queue.Ending{ID: "J1", Type: "ops:noop", Queue: "default", State: "completed", Attempts: 1, Error: "left over"}
	for range 2 {
		if err := cb.Report(context.Background(), done); err != nil {
			t.Fatal(err)
		}
	}
	ins := asynq.NewInspectorFromRedisClient(rs.Client())
	tasks, err := ins.ListPendingTasks("default")
	if err != nil || len(tasks) != 1 || tasks[0].ID != "callback-J1-completed" {
		t.Fatalf("pending %+v (%v)", tasks, err)
	}
	var o Outcome
	if err := json.Unmarshal(tasks[0].Payload, &o); err != nil {
		t.Fatal(err)
	}
	if o != (Outcome{ID: "J1", Type: "ops:noop", State: "completed", Attempts: 1}) {
		t.Fatalf("outcome %+v", o)
	}
}
