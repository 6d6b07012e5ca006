package main

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

// Two workers each run the scheduler of an entry every = "1s": over 10 s it
// queues 10 jobs (± the tick at either end), not 20; and `errand schedule
// list` shows the entry's last and next run.
func TestScheduleEverySecondOnTwoWorkersRunsOncePerTick(t *testing.T) {
	s := startStack(t, stackOptions{toml: `
[[schedule]]
name = "heartbeat"
type = "ops:noop"
every = "1s"
`})
	second := &syncBuffer{}
	s.startWorker(second)
	start := time.Now()
	time.Sleep(10 * time.Second)
	end := time.Now()
	// runs are the "job done" lines of the ticks in (start, end], from both
	// workers' logs: a tick queued by both would run twice.
	runs := func() (n int, lastDone bool) {
		lastTick := end.Truncate(time.Second)
		for _, tick := range doneTicks(t, s.worker, second) {
			if tick.After(start) && !tick.After(end) {
				n++
			}
			lastDone = lastDone || tick.Equal(lastTick)
		}
		return n, lastDone
	}
	s.waitFor(15*time.Second, "the last tick's job to run", func() bool { _, done := runs(); return done })
	time.Sleep(time.Second) // a second run of any tick would be done by now
	n, _ := runs()
	t.Logf("every = 1s on two workers for %s: %d runs", end.Sub(start).Round(time.Millisecond), n)
	if n < 9 || n > 11 {
		t.Fatalf("%d runs in 10 s, want 10 ± 1", n)
	}

	out, err := s.cli("schedule", "list", "--json")
	var list []struct {
		Name, Type, Queue, Every string
		LastRun                  *time.Time `json:"last_run"`
		NextRun                  time.Time  `json:"next_run"`
	}
	if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 {
		t.Fatalf("errand schedule list --json: %v\n%s", err, out)
	}
	e := list[0]
	if e.Name != "heartbeat" || e.Type != "ops:noop" || e.Queue != "default" || e.Every != "1s" || e.LastRun == nil ||
		e.LastRun.Before(end.Add(-2*time.Second)) || !e.NextRun.After(*e.LastRun) {
		t.Fatalf("schedule list: %+v", e)
	}
	out, err = s.cli("schedule", "list")
	if err != nil || !strings.Contains(out, "heartbeat") || !strings.Contains(out, "every 1s") || !strings.Contains(out, "NEXT RUN") {
		t.Fatalf("errand schedule list: %v\n%s", err, out)
	}
}

// doneTicks are the ticks of heartbeat jobs done in logs, in order, with
// a repeat kept (a tick run twice shows twice).
func doneTicks(t *testing.T, logs ...*syncBuffer) []time.Time {
	t.Helper()
	var ticks []time.Time
	for _, log := range logs {
		for _, l := range log.lines("job done", "job_id=heartbeat@") {
			id := strings.Fields(l[strings.Index(l, "job_id=heartbeat@"):])[0]
			tick, err := time.Parse(time.RFC3339, strings.TrimPrefix(id, "job_id=heartbeat@"))
			if err != nil {
				t.Fatalf("job id %q: %v", id, err)
			}
			ticks = append(ticks, tick)
		}
	}
	slices.SortFunc(ticks, func(a, b time.Time) int { return a.Compare(b) })
	return ticks
}

// The only worker stops and another starts 3 s later (a deploy): the ticks
// due meanwhile are queued by the new worker as it starts, so the runs go on
// second by second with no tick missing and none twice.
func TestScheduleTicksMissedDuringARestartStillRun(t *testing.T) {
	s := startStack(t, stackOptions{noWorker: true, toml: `
[[schedule]]
name = "heartbeat"
type = "ops:noop"
every = "1s"
`})
	first := &syncBuffer{}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"worker", "--config", s.config}, nil, first, first) }()
	s.waitFor(20*time.Second, "three heartbeats", func() bool { return len(doneTicks(t, first)) >= 3 })
	stop()
	if err := <-done; err != nil {
		t.Fatalf("first worker: %v", err)
	}
	stopped := time.Now()
	time.Sleep(3 * time.Second)
	second := &syncBuffer{}
	s.startWorker(second)
	restarted := time.Now()
	s.waitFor(20*time.Second, "a heartbeat after the restart", func() bool {
		ticks := doneTicks(t, second)
		return len(ticks) > 0 && ticks[len(ticks)-1].After(restarted)
	})
	ticks := doneTicks(t, first, second)
	t.Logf("runs %s … %s (%d); first worker stopped at %s, second started at %s", ticks[0].Format(time.TimeOnly),
		ticks[len(ticks)-1].Format(time.TimeOnly), len(ticks), stopped.Format("15:04:05.000"), restarted.Format("15:04:05.000"))
	for i := 1; i < len(ticks); i++ {
		if d := ticks[i].Sub(ticks[i-1]); d != time.Second {
			t.Errorf("run of %s follows %s: %s apart, want 1s", ticks[i].Format(time.TimeOnly), ticks[i-1].Format(time.TimeOnly), d)
		}
	}
	if !ticks[0].Before(stopped) || !ticks[len(ticks)-1].After(restarted) {
		t.Fatalf("the runs do not span the restart")
	}
}
