package store_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/store"
)

// BenchmarkSaveAPIJob is the database half of POST /api/jobs: one job
// accepted (outbox row, idempotency answer) per operation, from 16
// concurrent requests.
func BenchmarkSaveAPIJob(b *testing.B) {
	st, err := store.Open("file:" + filepath.Join(b.TempDir(), "errand.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	if _, err := st.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
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
