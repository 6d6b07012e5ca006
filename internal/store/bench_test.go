package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/store"
)

// BenchmarkSaveAPIJob is the database half of POST /api/jobs: one job
// accepted (outbox row, idempotency answer) per operation, from 16
// concurrent requests.
func BenchmarkSaveAPIJob(b *testing.B) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) { benchSaveAPIJob(b, openMigrated(b, be.url(b))) })
	}
}

func benchSaveAPIJob(b *testing.B, st store.Store) {
	ctx := context.Background()
	b.SetParallelism(8)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			now := time.Now()
			id := job.NewID(now)
			err := st.SaveAPIJob(ctx, store.APIJob{
				Envelope:  job.Envelope{ID: id, Type: "ops:noop", Queue: "default", Payload: []byte(`{}`), QueuedAt: now, DueAt: now},
				TokenHash: "t", Key: id, BodyHash: "h", Status: 202, Response: `{"id":"` + id + `"}`,
			})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}
