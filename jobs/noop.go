package jobs

import (
	"context"

	"github.com/errandhq/errand/internal/job"
)

// Noop does nothing: an end-to-end probe of the queue (enqueue it and watch it
// complete) and the job the benchmarks run.
type Noop struct{}

// Kind implements job.Args.
func (Noop) Kind() string { return "ops:noop" }

// Defaults implements job.Args.
func (Noop) Defaults() job.Defaults { return job.Defaults{Queue: "default"} }

// Work does nothing.
func (Noop) Work(context.Context, Noop) error { return nil }

// newNoop is Noop's constructor: the payload is its own handler, as it holds
// nothing.
func newNoop(Deps) (Noop, error) { return Noop{}, nil }
