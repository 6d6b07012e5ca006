package store_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/store"
)

func envelope(id string) job.Envelope {
	now := time.Now()
	return job.Envelope{ID: id, Type: "ops:noop", Queue: "default", Payload: []byte(`{}`), DueAt: now, QueuedAt: now}
}

func oneJob(id string) func(*store.User) ([]job.Envelope, error) {
	return func(*store.User) ([]job.Envelope, error) { return []job.Envelope{envelope(id)}, nil }
}

func backlog(t *testing.T, st store.Store) int {
	t.Helper()
	n, _, err := st.OutboxBacklog(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// An email is registered once whatever its case; a refused registration
// leaves no job behind, and a profile change cannot take another user's
// email either.
func TestEmailIsUniqueWhateverItsCase(t *testing.T) {
	eachBackend(t, func(t *testing.T, _ string, st store.Store) {
		ctx := context.Background()
		ada := &store.User{Email: "Ada@Shop.test", FirstName: "Ada", LastName: "L", PasswordHash: "x"}
		if err := st.CreateUser(ctx, ada, oneJob("J1")); err != nil {
			t.Fatal(err)
		}
		err := st.CreateUser(ctx, &store.User{Email: "ada@SHOP.TEST", FirstName: "A", LastName: "L", PasswordHash: "x"}, oneJob("J2"))
		if !errors.Is(err, store.ErrEmailTaken) {
			t.Fatalf("the same email in another case: %v, want ErrEmailTaken", err)
		}
		if ok, err := st.EmailRegistered(ctx, "ADA@shop.test"); err != nil || !ok {
			t.Fatalf("EmailRegistered in another case: %v %v", ok, err)
		}
		if n := backlog(t, st); n != 1 {
			t.Fatalf("%d jobs in the outbox, want 1 (the refused registration's job must be rolled back)", n)
		}
		bob := &store.User{Email: "bob@shop.test", FirstName: "Bob", LastName: "L", PasswordHash: "x"}
		if err := st.CreateUser(ctx, bob, oneJob("J3")); err != nil {
			t.Fatal(err)
		}
		_, err = st.UpdateUser(ctx, bob.ID, map[string]string{"email": "ADA@shop.test"}, func(_, _ *store.User) ([]job.Envelope, error) {
			return []job.Envelope{envelope("J4")}, nil
		})
		if !errors.Is(err, store.ErrEmailTaken) {
			t.Fatalf("changing an email to a taken one: %v", err)
		}
		after, err := st.UpdateUser(ctx, bob.ID, map[string]string{"first_name": "Robert"}, func(before, after *store.User) ([]job.Envelope, error) {
			if before.FirstName != "Bob" || after.FirstName != "Robert" {
				t.Errorf("before %q, after %q", before.FirstName, after.FirstName)
			}
			return []job.Envelope{envelope("J5")}, nil
		})
		if err != nil || after.FirstName != "Robert" {
			t.Fatalf("update: %v %v", after, err)
		}
		if got, _ := st.GetUser(ctx, bob.ID); got.FirstName != "Robert" || got.Email != "bob@shop.test" {
			t.Fatalf("stored: %+v", got)
		}
		if n := backlog(t, st); n != 3 {
			t.Fatalf("%d jobs in the outbox, want 3", n)
		}
	})
}

// Several processes (each its own connection pool) delivering the same
// registration, webhook, shipment and Idempotency-Key at once: each is
// recorded once, with its one job; the others are told it is a duplicate.
func TestConcurrentRepeatsAreRecordedOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, url string, _ store.Store) {
		ctx := context.Background()
		const procs = 6
		stores := make([]store.Store, procs)
		for i := range stores {
			stores[i] = openMigrated(t, url)
		}
		type outcome struct{ ok, dup int }
		var mu sync.Mutex
		got := map[string]*outcome{}
		record := func(what string, err error, dup error) {
			mu.Lock()
			defer mu.Unlock()
			o := got[what]
			if o == nil {
				o = &outcome{}
				got[what] = o
			}
			switch {
			case err == nil:
				o.ok++
			case errors.Is(err, dup):
				o.dup++
			default:
				t.Errorf("%s: %v", what, err)
			}
		}
		var wg sync.WaitGroup
		for i, st := range stores {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := func(what string) string { return fmt.Sprintf("%s-%d", what, i) }
				record("registration", st.CreateUser(ctx, &store.User{Email: []string{"same@shop.test", "SAME@Shop.Test"}[i%2],
					FirstName: "S", LastName: "L", PasswordHash: "x"}, oneJob(id("user"))), store.ErrEmailTaken)
				record("webhook", st.SaveOrder(ctx, "event-1", &store.Order{ID: 1001, Payload: "{}"}, []job.Envelope{envelope(id("order"))}), store.ErrDuplicate)
				record("order under new event ids", st.SaveOrder(ctx, id("event"), &store.Order{ID: 2002, Payload: "{}"}, []job.Envelope{envelope(id("order2"))}), store.ErrDuplicate)
				record("shipment", st.SaveShipment(ctx, &store.Shipment{OrderID: 1001, TrackingNumber: "1Z"}, func(*store.Shipment) ([]job.Envelope, error) {
					return []job.Envelope{envelope(id("ship"))}, nil
				}), store.ErrDuplicate)
				record("idempotency key", st.SaveAPIJob(ctx, store.APIJob{Envelope: envelope(id("api")), TokenHash: "t", Key: "k1", BodyHash: "h", Status: 202, Response: "{}"}), store.ErrDuplicate)
			}()
		}
		wg.Wait()
		for what, o := range got {
			if o.ok != 1 || o.dup != procs-1 {
				t.Errorf("%s: recorded %d times, %d told duplicate; want 1 and %d", what, o.ok, o.dup, procs-1)
			}
		}
		if n := backlog(t, stores[0]); n != 5 {
			t.Fatalf("%d jobs in the outbox, want 5 (one per thing recorded)", n)
		}
	})
}

// Processes starting at once migrate once: every version applied by exactly
// one of them, none failing.
func TestMigrationsRunOnceWhenProcessesStartTogether(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			url := b.url(t)
			const procs = 4
			applied := make([][]int, procs)
			errs := make([]error, procs)
			var wg sync.WaitGroup
			for i := range procs {
				st, err := store.Open(url)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				wg.Add(1)
				go func() { defer wg.Done(); applied[i], errs[i] = st.Migrate(context.Background()) }()
			}
			wg.Wait()
			var all []int
			for i := range procs {
				if errs[i] != nil {
					t.Fatalf("process %d: %v", i, errs[i])
				}
				all = append(all, applied[i]...)
			}
			sort.Ints(all)
			// Every version from 1 up once, however many there are now.
			ok := len(all) >= 5
			for i, v := range all {
				ok = ok && v == i+1
			}
			if !ok {
				t.Fatalf("versions applied across the processes: %v, want each of 1…n once", all)
			}
		})
	}
}

// Relays claiming at once from several processes take every row exactly
// once; a claimed row is not handed out again until its lease ends (a relay
// that died) or it is released (Redis refused it).
func TestOutboxClaimsAreExclusiveAndLeased(t *testing.T) {
	eachBackend(t, func(t *testing.T, url string, st store.Store) {
		ctx := context.Background()
		const n = 400
		for i := range n {
			if err := st.SaveAPIJob(ctx, store.APIJob{Envelope: envelope(fmt.Sprintf("JOB-%03d", i)), TokenHash: "t"}); err != nil {
				t.Fatal(err)
			}
		}
		var mu sync.Mutex
		seen := map[string]int{}
		var wg sync.WaitGroup
		for range 4 {
			relay := openMigrated(t, url)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					batch, err := relay.ClaimOutbox(ctx, time.Minute, 16)
					if err != nil {
						t.Error(err)
						return
					}
					if len(batch) == 0 {
						return
					}
					mu.Lock()
					for _, e := range batch {
						seen[e.ID]++
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(seen) != n {
			t.Fatalf("%d of %d jobs claimed", len(seen), n)
		}
		for id, k := range seen {
			if k != 1 {
				t.Fatalf("%s claimed %d times", id, k)
			}
		}
		if again, _ := st.ClaimOutbox(ctx, time.Minute, 16); len(again) != 0 {
			t.Fatalf("%d leased jobs claimed again", len(again))
		}
		if err := st.ReleaseOutbox(ctx, []string{"JOB-007", "JOB-003"}, "redis down"); err != nil {
			t.Fatal(err)
		}
		again, err := st.ClaimOutbox(ctx, 300*time.Millisecond, 16)
		if err != nil || len(again) != 2 || again[0].ID != "JOB-003" || again[1].ID != "JOB-007" {
			t.Fatalf("released jobs claimed again: %v %v", again, err)
		}
		deadline := time.Now().Add(15 * time.Second)
		for {
			back, err := st.ClaimOutbox(ctx, time.Minute, 16)
			if err != nil {
				t.Fatal(err)
			}
			if len(back) == 2 {
				break
			}
			if len(back) != 0 || time.Now().After(deadline) {
				t.Fatalf("after their lease ended: %d jobs came back, want 2", len(back))
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err := st.DeleteOutbox(ctx, []string{"JOB-003", "JOB-007"}); err != nil {
			t.Fatal(err)
		}
		if got := backlog(t, st); got != n-2 {
			t.Fatalf("backlog %d after deleting 2 of %d", got, n)
		}
	})
}

// A job queued with an Idempotency-Key and a callback keeps all three: the
// answer for the key, the callback, the job in the outbox. A repeat of the
// key, in the same batch or later, queues nothing.
func TestAPIJobKeepsItsAnswerAndCallback(t *testing.T) {
	eachBackend(t, func(t *testing.T, _ string, st store.Store) {
		ctx := context.Background()
		j := store.APIJob{Envelope: envelope("JOB-1"), TokenHash: "t", Key: "k", BodyHash: "h", Status: 202, Response: `{"id":"JOB-1"}`,
			CallbackURL: "https://shop.test/cb", CallbackToken: "cb-token"}
		j.Envelope.Callback = true
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				k := j
				if i > 0 {
					k.Envelope.ID = fmt.Sprintf("JOB-%d", i+1)
				}
				errs[i] = st.SaveAPIJob(ctx, k)
			}()
		}
		wg.Wait()
		saved := ""
		for i, err := range errs {
			switch {
			case err == nil && saved == "":
				saved = fmt.Sprintf("JOB-%d", i+1)
			case err == nil:
				t.Fatalf("the key was taken twice")
			case !errors.Is(err, store.ErrDuplicate):
				t.Fatal(err)
			}
		}
		if saved == "" {
			t.Fatal("no request took the key")
		}
		if n := backlog(t, st); n != 1 {
			t.Fatalf("%d jobs queued for one key", n)
		}
		kept, err := st.LookupIdempotent(ctx, "t", "k")
		if err != nil || kept == nil || kept.Status != 202 || kept.BodyHash != "h" {
			t.Fatalf("kept answer: %+v %v", kept, err)
		}
		if url, token, err := st.Callback(ctx, saved); err != nil || url != "https://shop.test/cb" || token != "cb-token" {
			t.Fatalf("callback: %q %q %v", url, token, err)
		}
		e, err := st.OutboxJob(ctx, saved)
		if err != nil || e.Type != "ops:noop" || string(e.Payload) != "{}" {
			t.Fatalf("outbox job: %+v %v", e, err)
		}
		claimed, err := st.ClaimOutbox(ctx, time.Minute, 10)
		if err != nil || len(claimed) != 1 || !claimed[0].Callback {
			t.Fatalf("claimed %+v %v, want the job with its callback flag", claimed, err)
		}
		if owner, err := st.JobOwner(ctx, saved); err != nil || owner != "t" {
			t.Fatalf("owner %q %v", owner, err)
		}
	})
}
