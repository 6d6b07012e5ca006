package main

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
)

// leased returns the one job leased on any queue: its queue, id and when its
// lease ends.
func (s *stack) leased() (queue, id string, ends time.Time) {
	s.t.Helper()
	ctx := context.Background()
	keys, err := s.redis.Client().Keys(ctx, "asynq:{*}:lease").Result()
	if err != nil {
		s.t.Fatal(err)
	}
	for _, k := range keys {
		zs, err := s.redis.Client().ZRangeWithScores(ctx, k, 0, -1).Result()
		if err != nil {
			s.t.Fatal(err)
		}
		for _, z := range zs {
			if id != "" {
				s.t.Fatalf("more than one job leased: %s and %v", id, z.Member)
			}
			queue = strings.TrimSuffix(strings.TrimPrefix(k, "asynq:{"), "}:lease")
			id, ends = z.Member.(string), time.Unix(int64(z.Score), 0)
		}
	}
	if id == "" {
		s.t.Fatal("no job leased")
	}
	return queue, id, ends
}

// A worker killed with SIGKILL mid-job and started again at once, with no
// other worker alive, takes its job back at once: its predecessor's process
// is gone, so it does not wait for the lease to end. The attempt counts and
// the job keeps its id.
func TestRestartedWorkerTakesBackItsJobAtOnce(t *testing.T) {
	s, w, _ := slowJobInFlight(t, 4*time.Second, "")
	queue, id, leaseEnds := s.leased()
	if err := w.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = w.Process.Wait()
	killed := time.Now()
	_, log := startBinary(t, errandBinary(t), "worker", "--config", s.config)
	for s.smtp.Attempts() < 2 { // polled finely: the figure is printed
		if time.Since(killed) > 15*time.Second {
			t.Fatalf("the job was not sent again within 15 s of the kill; restarted worker's log:\n%s", log.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	took := time.Since(killed)
	// Still mid-send (the SMTP server is slow): the job as it runs again.
	info, err := s.inspector().GetTaskInfo(queue, id)
	if err != nil {
		t.Fatalf("the redelivered job %s on %s: %v", id, queue, err)
	}
	t.Logf("SIGKILL mid-job, worker restarted at once, no other worker: redelivered %s after the kill; the lease would have ended %s after it",
		took.Round(time.Millisecond), leaseEnds.Sub(killed).Round(10*time.Millisecond))
	if took > 5*time.Second || !time.Now().Before(leaseEnds) {
		t.Fatalf("redelivered %s after the kill, want within 5 s and before the lost lease would have ended (%s after)", took.Round(10*time.Millisecond), leaseEnds.Sub(killed).Round(time.Second))
	}
	if info.State != asynq.TaskStateActive || info.Retried != 1 || !strings.Contains(info.LastErr, "lease expired") {
		t.Fatalf("the redelivered job: state %s, retried %d, last error %q; want active, 1, lease expired", info.State, info.Retried, info.LastErr)
	}
	if len(log.lines("put back jobs of a lost worker")) != 1 {
		t.Fatalf("the restarted worker did not say it put the job back:\n%s", log.String())
	}
	s.smtp.SetLatency(0)
	s.waitFor(30*time.Second, "the email to be sent", func() bool { return len(s.smtp.Messages()) >= 1 })
	time.Sleep(time.Second)
	if n := len(s.smtp.Messages()); n != 1 {
		t.Fatalf("%d emails sent, want 1", n)
	}
}

// Workers that start beside a living one never take its job, though each
// looks for lost jobs at start and every few seconds, and knows the living
// one ran on its host.
func TestNewWorkersNeverTakeALivingWorkersJob(t *testing.T) {
	s, _, _ := slowJobInFlight(t, 4500*time.Millisecond, "") // under [smtp] timeout
	queue, id, _ := s.leased()
	var logs []*syncBuffer
	for range 3 {
		_, log := startBinary(t, errandBinary(t), "worker", "--config", s.config)
		logs = append(logs, log)
	}
	for _, log := range logs {
		s.waitFor(15*time.Second, "the new workers to start", func() bool { return len(log.lines("worker started")) > 0 })
	}
	s.waitFor(30*time.Second, "the email to be sent", func() bool { return len(s.smtp.Messages()) >= 1 })
	time.Sleep(4 * time.Second) // another recovery pass or two
	if n := s.smtp.Attempts(); n != 1 {
		t.Fatalf("%d sends of the email, want 1: a new worker took a living one's job", n)
	}
	for i, l := range logs {
		if got := l.lines("put back jobs"); len(got) != 0 {
			t.Fatalf("new worker %d put back a living worker's job: %v", i+1, got)
		}
	}
	if info, err := s.inspector().GetTaskInfo(queue, id); err == nil && info.Retried != 0 {
		t.Fatalf("the job counts %d lost attempts, want 0", info.Retried)
	}
}

// A worker frozen mid-job (SIGSTOP: alive, but its lease renewals stop, as in
// a long pause or a Redis blip) loses the job once its lease ends: another
// worker, which cannot judge it dead, puts the job back and runs it. When the
// frozen worker wakes and finishes the job, it records nothing for it: the
// job stays the other worker's, running, and is not run a third time.
func TestFrozenWorkerThatLostItsJobRecordsNothing(t *testing.T) {
	t.Parallel()
	// [smtp] timeout 60s: the slow SMTP server below is not a failure.
	s, w1, _ := slowJobInFlightOn(t, 20*time.Second, stackOptions{smtpTimeout: "60s"})
	queue, id, leaseEnds := s.leased()
	if err := w1.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	frozen := time.Now()
	_, log2 := startBinary(t, errandBinary(t), "worker", "--config", s.config)
	s.waitFor(30*time.Second, "the other worker to run the job", func() bool { return s.smtp.Attempts() >= 2 })
	took := time.Since(frozen)
	t.Logf("worker frozen mid-job, another worker alive: redelivered %s after the freeze (the lease ended %s after it)",
		took.Round(10*time.Millisecond), leaseEnds.Sub(frozen).Round(10*time.Millisecond))
	// The lease (10 s from its last renewal, in whole seconds) and the next
	// recovery pass (every 3 s ± 0.75 s): about 15 s at worst; the bound
	// leaves room for a loaded machine.
	if took > 20*time.Second {
		t.Fatalf("redelivered %s after the freeze, want within 20 s", took.Round(time.Second))
	}
	// The frozen worker wakes, finishes its send and stops: every outcome it
	// records is written before it exits.
	for _, sig := range []syscall.Signal{syscall.SIGCONT, syscall.SIGTERM} {
		if err := w1.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w1.Process.Wait(); err != nil {
		t.Fatal(err)
	}
	info, err := s.inspector().GetTaskInfo(queue, id)
	if err != nil {
		t.Fatal(err)
	}
	if info.State != asynq.TaskStateActive || info.Retried != 1 {
		t.Fatalf("after the frozen worker finished, the job is %s with %d lost attempts; want still active on the other worker, 1", info.State, info.Retried)
	}
	s.smtp.SetLatency(0)
	s.waitFor(40*time.Second, "the other worker to complete the job", func() bool {
		info, err := s.inspector().GetTaskInfo(queue, id)
		return (err == nil && info.State == asynq.TaskStateCompleted) || len(log2.lines("job done")) > 0
	})
	time.Sleep(4 * time.Second)
	if n := s.smtp.Attempts(); n != 2 {
		t.Fatalf("%d sends, want 2 (the frozen worker's and the other's), no third", n)
	}
	if f := s.failed(); len(f) != 0 {
		t.Fatalf("failed list: %v", f)
	}
}
