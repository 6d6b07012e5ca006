package main

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// registered is the registrations errand answered 201, with when.
type registered struct {
	mu   sync.Mutex
	at   map[string]time.Time
	sent atomic.Int64
}

// burst registers from workers goroutines until stop is closed.
func (s *stack) burst(r *registered, workers int, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	var n atomic.Int64
	for w := range workers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				email := fmt.Sprintf("b%d-%d@shop.test", w, n.Add(1))
				r.sent.Add(1)
				res, err := s.send("POST", "/api/users", registration(email), nil)
				if err == nil && res.status == http.StatusCreated {
					r.mu.Lock()
					r.at[email] = time.Now()
					r.mu.Unlock()
				}
			}
		})
	}
	return &wg
}

// sideEffects counts, per registered email, the welcome emails, the rep
// messages and the CRM contacts.
func (s *stack) sideEffects() (mails, reps, contacts map[string]int) {
	mails, reps, contacts = map[string]int{}, map[string]int{}, map[string]int{}
	for _, m := range s.smtp.Messages() {
		mails[m.To[0]]++
	}
	email := regexp.MustCompile(`[a-z0-9.-]+@shop\.test`)
	for _, m := range s.sandbox.Slack.Messages() {
		reps[email.FindString(m.Text)]++
	}
	for _, c := range s.sandbox.Tidio.Contacts() {
		contacts[str(c["email"])]++
	}
	return mails, reps, contacts
}

// logTimes returns when each log line holding sub was written (text logs'
// time= field).
func logTimes(log *syncBuffer, sub string) []time.Time {
	var out []time.Time
	for _, l := range log.lines(sub) {
		if _, v, ok := strings.Cut(l, "time="); ok {
			v, _, _ = strings.Cut(v, " ")
			if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
				out = append(out, t)
			}
		}
	}
	return out
}

// The master killed with SIGKILL during a burst of registrations: the
// sentinels promote the replica, errand follows by itself, and every
// registration answered 201 has all its side effects.
func TestSentinelFailoverDuringBurstLosesNothing(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{sentinel: true, toml: welcomeAtOnce})
	reg := &registered{at: map[string]time.Time{}}
	stop := make(chan struct{})
	wg := s.burst(reg, 6, stop)
	s.waitFor(30*time.Second, "the first welcome emails", func() bool { return len(s.smtp.Messages()) >= 6 })

	s.sentinel.Master.Kill()
	killed := time.Now()
	promoted := make(chan time.Time, 1)
	go func() {
		for time.Since(killed) < 30*time.Second {
			if s.sentinel.Replica.Role() == "master" {
				promoted <- time.Now()
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		promoted <- time.Time{}
	}()
	// The first job completed after the kill: the welcome email of a
	// registration answered after it, so its job went through the new master.
	var firstDone, readyAgain time.Duration
	deadline := killed.Add(15 * time.Second)
	for (firstDone == 0 || readyAgain == 0) && time.Now().Before(deadline) {
		if readyAgain == 0 {
			if code, _ := s.get("/readyz"); code == http.StatusOK {
				readyAgain = time.Since(killed)
			}
		}
		if firstDone == 0 {
			reg.mu.Lock()
			for _, m := range s.smtp.Messages() {
				if at, ok := reg.at[m.To[0]]; ok && at.After(killed) {
					firstDone = time.Since(killed)
					break
				}
			}
			reg.mu.Unlock()
		}
		time.Sleep(50 * time.Millisecond)
	}
	if firstDone == 0 || readyAgain == 0 {
		t.Fatalf("15 s after the master was killed: first completion after %s, /readyz 200 after %s (0 = not yet)", firstDone, readyAgain)
	}
	failedOver := <-promoted
	if failedOver.IsZero() {
		t.Fatal("the replica was not promoted within 30 s")
	}
	time.Sleep(3 * time.Second) // registrations go on on the new master
	close(stop)
	wg.Wait()

	reg.mu.Lock()
	answered := len(reg.at)
	inFlight := 0 // answered within the second before the kill
	for _, at := range reg.at {
		if at.After(killed.Add(-time.Second)) && at.Before(killed) {
			inFlight++
		}
	}
	reg.mu.Unlock()
	missing := func() []string {
		mails, reps, contacts := s.sideEffects()
		var out []string
		reg.mu.Lock()
		defer reg.mu.Unlock()
		for email := range reg.at {
			if mails[email] == 0 || reps[email] == 0 || contacts[email] == 0 {
				out = append(out, email)
			}
		}
		return out
	}
	// Rows no replica confirmed are relayed again when their lease ends.
	deadline = time.Now().Add(30 * time.Second)
	for len(missing()) > 0 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if m := missing(); len(m) > 0 {
		t.Fatalf("%d of %d registrations answered 201 lack a side effect, e.g. %s", len(m), answered, m[0])
	}
	time.Sleep(time.Second)
	mails, reps, contacts := s.sideEffects()
	dup := func(m map[string]int) (n int) {
		for _, c := range m {
			n += max(c-1, 0)
		}
		return n
	}
	cfgConcurrency := 20
	t.Logf("Sentinel failover (kill -9 of the master) during a burst: %d registrations sent, %d answered 201, all delivered; "+
		"the replica was promoted %s after the kill, /readyz 200 after %s, first completion after %s; "+
		"duplicates: %d welcome emails, %d rep messages, %d CRM contacts (%d registrations answered in the second before the kill)",
		reg.sent.Load(), answered, failedOver.Sub(killed).Round(time.Millisecond), readyAgain.Round(time.Millisecond),
		firstDone.Round(time.Millisecond), dup(mails), dup(reps), dup(contacts), inFlight)
	// A job run on the old master whose completion had not reached the
	// replica runs again: at most the jobs in flight at the kill.
	if d := max(dup(mails), dup(reps), dup(contacts)); d > inFlight+cfgConcurrency {
		t.Fatalf("%d duplicates, more than in flight (%d registrations in the last second, %d jobs running)", d, inFlight, cfgConcurrency)
	}
	quiet := failedOver.Add(10 * time.Second)
	for name, log := range map[string]*syncBuffer{"serve": s.serve, "worker": s.worker} {
		times := logTimes(log, "READONLY")
		for _, at := range times {
			if at.After(quiet) {
				t.Fatalf("%s logged READONLY at %s, over 10 s after the failover (%s)", name, at.Format(time.RFC3339Nano), failedOver.Format(time.RFC3339Nano))
			}
		}
		t.Logf("%s: %d READONLY lines, none 10 s after the failover", name, len(times))
	}
}

// The write a failover loses: the replica is paused, so the jobs relayed to
// the master never reach it; the master dies and the replica, resumed, takes
// over without them. The relay kept their rows (no replica acknowledged them)
// and relays them again: none is lost, and each runs once.
func TestSentinelFailoverLosesNoUnreplicatedJob(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{sentinel: true, noWorker: true, toml: welcomeAtOnce})
	// Paused, the replica would still find the master's writes in its
	// socket's buffer when it resumes; the master dropping it (after
	// repl-timeout) makes sure the writes never reach it.
	master := s.sentinel.Master.Client()
	if err := master.ConfigSet(t.Context(), "repl-timeout", "2").Err(); err != nil {
		t.Fatal(err)
	}
	s.sentinel.Replica.Pause()
	s.waitFor(20*time.Second, "the master to drop the paused replica", func() bool {
		v, _ := master.Info(t.Context(), "replication").Result()
		return strings.Contains(v, "connected_slaves:0")
	})
	const n = 10
	emails := make([]string, n)
	for i := range n {
		emails[i] = fmt.Sprintf("lost%d@shop.test", i)
		if code, body := s.post("/api/users", registration(emails[i]), nil); code != http.StatusCreated {
			t.Fatalf("registration %d: %d %v", i, code, body)
		}
	}
	// Each registration queues three jobs (welcome email, rep message, CRM).
	s.waitFor(15*time.Second, "the jobs in the master", func() bool {
		return len(s.jobIDs("emails", "notifications", "crm")) >= 3*n
	})
	s.waitFor(15*time.Second, "the relay to report no replica acknowledged them", func() bool {
		return len(s.serve.lines("no replica acknowledged")) > 0
	})
	if backlog, _, err := s.db().OutboxBacklog(t.Context()); err != nil || backlog != 3*n {
		t.Fatalf("outbox holds %d jobs (%v), want the %d no replica acknowledged", backlog, err, 3*n)
	}
	old := s.sentinel.Master.Addr()
	s.sentinel.Master.Kill()
	s.sentinel.Replica.Resume()
	// Still a replica, so nothing but replication writes to it: the jobs
	// are not there. Promoted, it would lose them without the outbox.
	s.redis = s.sentinel.Replica
	if ids := s.jobIDs("emails", "notifications", "crm"); len(ids) != 0 {
		t.Fatalf("the replica holds %d of the jobs: the write was not lost, the test proves nothing", len(ids))
	}
	s.sentinel.WaitFailover(old, 30*time.Second)
	s.startWorker(s.worker)
	s.waitFor(40*time.Second, "every side effect", func() bool {
		mails, reps, contacts := s.sideEffects()
		for _, e := range emails {
			if mails[e] == 0 || reps[e] == 0 || contacts[e] == 0 {
				return false
			}
		}
		return true
	})
	time.Sleep(time.Second)
	mails, reps, contacts := s.sideEffects()
	for _, e := range emails {
		if mails[e] != 1 || reps[e] != 1 || contacts[e] != 1 {
			t.Fatalf("%s: %d welcome emails, %d rep messages, %d contacts; want one each", e, mails[e], reps[e], contacts[e])
		}
	}
	// The CLI and the dashboard find the new master through the sentinels.
	if out, err := s.cli("queues"); err != nil || !strings.Contains(out, "emails") {
		t.Fatalf("errand queues after the failover: %v\n%s", err, out)
	}
	if code, _, body := s.dashboardRequest("GET", "/monitoring/api/queues", "", "", ""); code != http.StatusOK || !strings.Contains(body, `"emails"`) {
		t.Fatalf("dashboard's queues after the failover: %d %.300s", code, body)
	}
	t.Logf("%d jobs in the master only, master killed, paused replica promoted: all %d relayed again and run once", 3*n, 3*n)
}
