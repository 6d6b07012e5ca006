package queue_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/queue"
	"github.com/hibiken/asynq"
)

// quick is a job that does nothing: what is left to measure is the policy
// around it, its log of a job done among it.
type quick struct{}

func (quick) Kind() string           { return "bench:quick" }
func (quick) Defaults() job.Defaults { return job.Defaults{Queue: "default"} }

// A job done, through the whole policy, 8 runners at once, with the log at
// INFO as a worker runs by default: at this pace nearly every success is
// counted for the summary line, not written (worklog.Successes). Run the
// same benchmark on an older tree to compare what a success costs.
func BenchmarkJobDoneLogged(b *testing.B) {
	cfg, err := config.Load("", false, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	reg := job.NewRegistry(cfg)
	job.Register(reg, func(context.Context, quick) error { return nil })
	if err := reg.Configure(nil); err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	p := queue.NewPolicy(queue.PolicyConfig{Registry: reg, Log: log})
	task := asynq.NewTask(quick{}.Kind(), []byte(`{}`))
	ctx := context.Background()
	b.SetParallelism(8)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := p.ProcessTask(ctx, task); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
