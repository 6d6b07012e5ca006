package jobs

import (
	"context"

	"github.com/errandhq/errand/internal/queue"
)

// Noop does nothing: an end-to-end probe of the queue (enqueue it and watch it
// complete) and the job the benchmarks run.
type Noop struct{}

// Kind implements queue.Args.
func (Noop) Kind() string { return "ops:noop" }

// Defaults implements queue.Args.
func (Noop) Defaults() queue.Defaults { return queue.Defaults{Queue: "default"} }

// Work does nothing.
func (Noop) Work(context.Context, Noop) error { return nil }
