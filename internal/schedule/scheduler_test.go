package schedule

import (
	"context"
	"io"
	"log/slog"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/redistest"
	"github.com/hibiken/asynq"
)

// run runs a scheduler of entries until stop is called.
func run(t *testing.T, s *Scheduler) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	return func() { cancel(); <-done }
}

// Two schedulers on one Redis queue each tick once; and when every
// scheduler is down for a few ticks (a restart, a deploy), the next one to
// start queues the ticks missed: the queued ticks run on, second by second,
// with neither a gap nor a repeat.
func TestEachTickQueuedOnceAndNoneLostAcrossARestart(t *testing.T) {
	rd := redistest.Start(t)
	reg := registry(t)
	entries, err := Parse([]config.Schedule{{Name: "every-second", Type: "test:report", Every: time.Second}}, reg)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	stopA := run(t, New(entries, reg, rd.Client(), log))
	stopB := run(t, New(entries, reg, rd.Client(), log))
	time.Sleep(3 * time.Second)
	stopA()
	stopB()
	down := time.Now()
	time.Sleep(3 * time.Second) // no scheduler runs
	stopC := run(t, New(entries, reg, rd.Client(), log))
	time.Sleep(2 * time.Second)
	stopC()

	tasks, err := asynq.NewInspectorFromRedisClient(rd.Client()).ListPendingTasks("default", asynq.PageSize(1000))
	if err != nil {
		t.Fatal(err)
	}
	var ticks []time.Time
	for _, task := range tasks {
		at, err := time.Parse(time.RFC3339, strings.TrimPrefix(task.ID, "every-second@"))
		if err != nil || task.Type != "test:report" {
			t.Fatalf("unexpected job %s %s", task.ID, task.Type)
		}
		ticks = append(ticks, at)
	}
	sort.Slice(ticks, func(i, j int) bool { return ticks[i].Before(ticks[j]) })
	t.Logf("%d jobs, ticks %s … %s", len(ticks), ticks[0].Format(time.TimeOnly), ticks[len(ticks)-1].Format(time.TimeOnly))
	if len(ticks) < 6 {
		t.Fatalf("only %d ticks queued in about 8 s", len(ticks))
	}
	for i := 1; i < len(ticks); i++ {
		if d := ticks[i].Sub(ticks[i-1]); d != time.Second {
			t.Errorf("tick %s follows %s: %s apart, want 1s", ticks[i].Format(time.TimeOnly), ticks[i-1].Format(time.TimeOnly), d)
		}
	}
	if last := ticks[len(ticks)-1]; !last.After(down.Add(3 * time.Second)) {
		t.Errorf("no tick after the restart: last %s", last)
	}
	lasts, err := LastRuns(context.Background(), rd.Client(), entries)
	if err != nil || !lasts[0].Equal(ticks[len(ticks)-1]) {
		t.Errorf("last run %v (%v), want the last tick %s", lasts, err, ticks[len(ticks)-1])
	}
}

// A new entry starts with its next tick: nothing is queued for the past.
func TestNewEntryStartsWithItsNextTick(t *testing.T) {
	rd := redistest.Start(t)
	reg := registry(t)
	entries, err := Parse([]config.Schedule{{Name: "hourly", Type: "test:report", Cron: "0 * * * *"}}, reg)
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, New(entries, reg, rd.Client(), slog.New(slog.NewTextHandler(io.Discard, nil))))
	time.Sleep(500 * time.Millisecond)
	stop()
	tasks, _ := asynq.NewInspectorFromRedisClient(rd.Client()).ListPendingTasks("default")
	if len(tasks) != 0 {
		t.Fatalf("%d jobs queued for past ticks", len(tasks))
	}
}
