package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/store"
)

// The relay sends jobs to Redis in the order they were saved: ordered job
// types (order_by) take their place in line at enqueue. Ids are chosen so
// that no other order (by id, by insertion into an index) gives it by chance.
func TestClaimOutboxInSaveOrder(t *testing.T) {
	eachBackend(t, func(t *testing.T, _ string, st store.Store) { claimInSaveOrder(t, st) })
}

func claimInSaveOrder(t *testing.T, st store.Store) {
	ctx := context.Background()
	now := time.Now()
	var saved []string
	for i := range 50 {
		id := fmt.Sprintf("JOB-%02d", (i*37)%50) // a permutation of 00..49
		saved = append(saved, id)
		err := st.SaveAPIJob(ctx, store.APIJob{Envelope: job.Envelope{ID: id, Type: "user:sync_crm", Queue: "crm",
			Payload: []byte(`{"user_id":7}`), DueAt: now, QueuedAt: now}, TokenHash: "aaaa"})
		if err != nil {
			t.Fatal(err)
		}
	}
	var claimed []string
	for len(claimed) < len(saved) {
		batch, err := st.ClaimOutbox(ctx, time.Minute, 16)
		if err != nil {
			t.Fatal(err)
		}
		if len(batch) == 0 {
			t.Fatalf("claimed %d of %d", len(claimed), len(saved))
		}
		for _, e := range batch {
			claimed = append(claimed, e.ID)
		}
	}
	for i := range saved {
		if claimed[i] != saved[i] {
			t.Fatalf("claimed in the order %v, saved in the order %v", claimed, saved)
		}
	}
}
