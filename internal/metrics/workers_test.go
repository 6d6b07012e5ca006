package metrics

import (
	"context"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/redistest"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
)

// errand_workers follows the workers' heartbeats: a running worker counts
// for each of its queues, a known queue nobody works reads 0, and a worker
// that stops is no longer counted.
func TestWorkersCountsHeartbeatsPerQueue(t *testing.T) {
	rs := redistest.Start(t)
	rdb := rs.Client()
	// A job on crm makes crm a known queue; no worker below works it.
	client := asynq.NewClientFromRedisClient(rdb)
	if _, err := client.Enqueue(asynq.NewTask("ops:noop", nil), asynq.Queue("crm")); err != nil {
		t.Fatal(err)
	}
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{Queues: map[string]int{"emails": 1, "critical": 6}, LogLevel: asynq.FatalLevel})
	if err := srv.Start(asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return nil })); err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			srv.Shutdown()
		}
	})

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewWorkers(rdb))
	gauge := func(queue string) float64 {
		t.Helper()
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			for _, m := range f.GetMetric() {
				if m.GetLabel()[0].GetValue() == queue {
					return m.GetGauge().GetValue()
				}
			}
		}
		return -1
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor("the worker's heartbeat", func() bool { return gauge("emails") == 1 })
	if got := gauge("critical"); got != 1 {
		t.Errorf(`errand_workers{queue="critical"} = %v, want 1`, got)
	}
	if got := gauge("crm"); got != 0 {
		t.Errorf(`errand_workers{queue="crm"} = %v with no worker on it, want 0`, got)
	}
	srv.Shutdown()
	stopped = true
	waitFor("the stopped worker to be gone", func() bool { return gauge("emails") <= 0 })
}
