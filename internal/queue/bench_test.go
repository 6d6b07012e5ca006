package queue_test

import (
	"context"
	"testing"

	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/queue"
	"github.com/errandhq/errand/internal/redistest"
	"github.com/errandhq/errand/jobs"
	"github.com/hibiken/asynq"
)

// Queuing a no-op job, 8 producers at once: errand's client, and asynq's
// client as it comes, on the same Redis (scripts/bench.sh measures the same
// across processes).
func BenchmarkEnqueue(b *testing.B) {
	rs := redistest.Start(b)
	cfg, err := config.Load("", false, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	reg := job.NewRegistry(cfg)
	jobs.Register(reg)
	if err := reg.Configure(nil); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.Run("errand", func(b *testing.B) {
		cli := queue.NewClient(reg, rs.Client())
		b.SetParallelism(4)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := cli.Push(ctx, jobs.Noop{}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("asynq", func(b *testing.B) {
		ac := asynq.NewClientFromRedisClient(rs.Client())
		b.SetParallelism(4)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := ac.EnqueueContext(ctx, asynq.NewTask(jobs.Noop{}.Kind(), []byte(`{}`))); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
