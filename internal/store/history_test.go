package store_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/redact"
	"github.com/errandhq/errand/internal/store"
)

// A registration's jobs reach the history in its transaction: queued with
// the user's entity; a registration rolled back leaves none. Attempts and a
// final failure are written in one batch, the failed job carrying every
// attempt; a retry from the failed list takes it off and marks it queued.
func TestHistoryRecordsQueuedAttemptsAndFailures(t *testing.T) {
	eachBackend(t, func(t *testing.T, url string, st store.Store) {
		ctx := context.Background()
		st.MaskPayloads(redact.New([]string{"phone"}))
		ada := &store.User{Email: "ada@shop.test", FirstName: "Ada", LastName: "L", PasswordHash: "x"}
		now := time.Now()
		var ids []string
		err := st.CreateUser(ctx, ada, func(u *store.User) ([]job.Envelope, error) {
			entity := "user:" + strconv.FormatInt(u.ID, 10)
			var out []job.Envelope
			for i, typ := range []string{"user:welcome_email", "user:notify_staff"} {
				e := job.Envelope{ID: job.NewID(now.Add(time.Duration(i) * time.Millisecond)), Type: typ, Queue: "emails",
					Payload:  []byte(`{"user_id":` + strconv.FormatInt(u.ID, 10) + `,"phone":"555-0100"}`),
					QueuedAt: now.Add(time.Duration(i) * time.Millisecond), Entity: entity}
				e.DueAt = e.QueuedAt
				if i == 0 {
					e.DueAt = e.QueuedAt.Add(5 * time.Second)
				}
				ids = append(ids, e.ID)
				out = append(out, e)
			}
			return out, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		entity := "user:" + strconv.FormatInt(ada.ID, 10)
		// A registration that fails after building its jobs leaves no history.
		err = st.CreateUser(ctx, &store.User{Email: "bob@shop.test", FirstName: "B", LastName: "L", PasswordHash: "x"},
			func(u *store.User) ([]job.Envelope, error) { return nil, errors.New("refused") })
		if err == nil {
			t.Fatal("a refused registration was saved")
		}

		tl, err := st.Timeline(ctx, entity)
		if err != nil {
			t.Fatal(err)
		}
		if len(tl) != 2 || tl[0].ID != ids[0] || tl[1].ID != ids[1] || tl[0].State != "scheduled" || tl[1].State != "pending" || len(tl[0].Attempts) != 0 {
			t.Fatalf("timeline after queuing: %+v", tl)
		}

		t1, t2 := now.Add(time.Second), now.Add(2*time.Second)
		welcome := ids[0]
		if err := st.RecordOutcomes(ctx, []store.Attempt{
			{JobID: welcome, Number: 1, At: t1, Outcome: store.OutcomeRetry, Error: "smtp: 451 try later"},
			{JobID: ids[1], Number: 1, At: t1, Outcome: store.OutcomeDone},
		}, nil); err != nil {
			t.Fatal(err)
		}
		failed := store.FailedJob{ID: welcome, Type: "user:welcome_email", Queue: "emails", Entity: entity,
			RunPayload: []byte(`{"user_id":1,"phone":"555-0100"}`), Attempts: 2, MaxAttempts: 3,
			Error: "smtp: 550 no such user", QueuedAt: now, FailedAt: t2}
		if err := st.RecordOutcomes(ctx, []store.Attempt{
			{JobID: welcome, Number: 2, At: t2, Outcome: store.OutcomeFailed, Error: "smtp: 550 no such user"},
		}, []store.FailedJob{failed}); err != nil {
			t.Fatal(err)
		}
		tl, err = st.Timeline(ctx, entity)
		if err != nil {
			t.Fatal(err)
		}
		if tl[0].State != "failed" || len(tl[0].Attempts) != 2 || tl[0].Attempts[0].Error != "smtp: 451 try later" ||
			!tl[0].Attempts[1].At.Equal(t2.Truncate(time.Millisecond)) || tl[1].State != "completed" || len(tl[1].Attempts) != 1 || tl[1].Attempts[0].Error != "" {
			t.Fatalf("timeline after the attempts: %+v", tl)
		}

		list, err := st.FailedJobs(ctx, store.FailedFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 1 {
			t.Fatalf("failed list: %+v", list)
		}
		f := list[0]
		if f.ID != welcome || f.Entity != entity || f.Attempts != 2 || f.MaxAttempts != 3 || len(f.History) != 2 ||
			f.History[0].Error != "smtp: 451 try later" || f.History[1].Error != "smtp: 550 no such user" || !f.History[0].At.Equal(t1.Truncate(time.Millisecond)) {
			t.Fatalf("failed job: %+v", f)
		}
		if strings.Contains(f.Payload, "555-0100") || !strings.Contains(string(f.RunPayload), "555-0100") {
			t.Fatalf("payload shown %s, kept to run %s: the shown one must be masked, the kept one whole", f.Payload, f.RunPayload)
		}
		if tl, _ := st.Timeline(ctx, "user:999999"); len(tl) != 0 {
			t.Fatalf("an unknown entity has jobs: %+v", tl)
		}
		if e, err := st.JobEntity(ctx, ids[1]); err != nil || e != entity {
			t.Fatalf("JobEntity = %q, %v", e, err)
		}
		if _, err := st.JobEntity(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("JobEntity of an unknown job: %v", err)
		}

		// Filters: by queue and by age.
		if l, _ := st.FailedJobs(ctx, store.FailedFilter{Queue: "crm"}); len(l) != 0 {
			t.Fatalf("crm's failed list: %+v", l)
		}
		if l, _ := st.FailedJobs(ctx, store.FailedFilter{Before: t2}); len(l) != 0 {
			t.Fatalf("failed before %v: %+v", t2, l)
		}
		if l, _ := st.FailedJobs(ctx, store.FailedFilter{Before: t2.Add(time.Millisecond)}); len(l) != 1 {
			t.Fatalf("failed before %v: %+v", t2.Add(time.Millisecond), l)
		}

		// Adopting what the list holds changes nothing; a job only Redis
		// knew is added, with the attempts the history has of it.
		orphan := store.FailedJob{ID: "ORPHAN", Type: "user:sync_crm", Queue: "crm", RunPayload: []byte(`{}`),
			Attempts: 1, MaxAttempts: 3, Error: "boom", FailedAt: t2}
		n, err := st.AdoptFailed(ctx, []store.FailedJob{failed, orphan})
		if err != nil || n != 1 {
			t.Fatalf("adopt = %d, %v; want 1 new", n, err)
		}
		if got, err := st.FailedJob(ctx, welcome); err != nil || len(got.History) != 2 {
			t.Fatalf("adopting replaced the recorded failure: %+v %v", got, err)
		}

		// A removal of the failure as read leaves a newer failure of the
		// same job (retried, and failed again before the retry took it off).
		again := failed
		again.FailedAt = t2.Add(time.Second)
		if err := st.RecordOutcomes(ctx, nil, []store.FailedJob{again}); err != nil {
			t.Fatal(err)
		}
		if err := st.RemoveFailed(ctx, []store.FailedJob{list[0]}, true); err != nil {
			t.Fatal(err)
		}
		if got, err := st.FailedJob(ctx, welcome); err != nil || !got.FailedAt.Equal(again.FailedAt.Truncate(time.Millisecond)) {
			t.Fatalf("the newer failure was removed with the old: %+v %v", got, err)
		}
		if tl, _ := st.Timeline(ctx, entity); tl[0].State != "failed" {
			t.Fatalf("a job that failed again is shown %q", tl[0].State)
		}
		if err := st.RemoveFailed(ctx, []store.FailedJob{again}, true); err != nil {
			t.Fatal(err)
		}
		if _, err := st.FailedJob(ctx, welcome); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a retried job is still in the failed list: %v", err)
		}
		if tl, _ := st.Timeline(ctx, entity); tl[0].State != "pending" {
			t.Fatalf("a retried job's state: %q", tl[0].State)
		}

		// Pruning drops history older than the cut-off, not the failed list.
		if _, err := st.PruneHistory(ctx, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if tl, _ := st.Timeline(ctx, entity); len(tl) != 0 {
			t.Fatalf("pruned history still there: %+v", tl)
		}
		if l, _ := st.FailedJobs(ctx, store.FailedFilter{}); len(l) != 1 || l[0].ID != "ORPHAN" {
			t.Fatalf("pruning the history changed the failed list: %+v", l)
		}
	})
}

// POST /api/jobs writes the job's history with its outbox row, with and
// without an Idempotency-Key; a replayed key writes nothing more.
func TestAPIJobsAreInTheHistory(t *testing.T) {
	eachBackend(t, func(t *testing.T, url string, st store.Store) {
		ctx := context.Background()
		now := time.Now()
		for i, key := range []string{"", "k1", "k1"} {
			e := job.Envelope{ID: "API" + strconv.Itoa(i), Type: "order:push_fulfillment", Queue: "fulfillment",
				Payload: []byte(`{"order_id":1001}`), QueuedAt: now.Add(time.Duration(i) * time.Millisecond), Entity: "order:1001"}
			e.DueAt = e.QueuedAt
			err := st.SaveAPIJob(ctx, store.APIJob{Envelope: e, TokenHash: "t", Key: key, BodyHash: "b", Status: 202, Response: "{}"})
			if i == 2 {
				if !errors.Is(err, store.ErrDuplicate) {
					t.Fatalf("replayed key: %v", err)
				}
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		tl, err := st.Timeline(ctx, "order:1001")
		if err != nil {
			t.Fatal(err)
		}
		if len(tl) != 2 || tl[0].ID != "API0" || tl[1].ID != "API1" || tl[0].Type != "order:push_fulfillment" {
			t.Fatalf("timeline: %+v", tl)
		}
		if err := st.RecordQueued(ctx, []job.Envelope{{ID: "CLI", Type: "order:sync_tracking", Queue: "shopify",
			Payload: []byte(`{}`), QueuedAt: now.Add(time.Second), DueAt: now.Add(time.Second), Entity: "order:1001"}}); err != nil {
			t.Fatal(err)
		}
		if tl, _ := st.Timeline(ctx, "order:1001"); len(tl) != 3 || tl[2].ID != "CLI" {
			t.Fatalf("timeline with a job queued by hand: %+v", tl)
		}
	})
}
