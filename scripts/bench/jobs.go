package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/jobs"
)

// Job types the bench runs besides errand's own ops:noop. Both workers (errand
// and plain asynq) see the same type names and the same payload bytes.
const (
	noopType  = "ops:noop"
	probeType = "bench:probe"
	flakyType = "bench:flaky"
)

// probeJob records when it was queued (T, unix ns) and which job it is (N);
// the worker records when its handler started. Pad makes payloads of a given
// size for the memory scenario.
type probeJob struct {
	N   int    `json:"n"`
	T   int64  `json:"t"`
	Pad string `json:"pad"`
}

// Kind implements job.Args.
func (probeJob) Kind() string { return probeType }

// Defaults implements job.Args.
func (probeJob) Defaults() job.Defaults { return job.Defaults{Queue: "default"} }

// flakyJob fails on its first two attempts and succeeds on the third, with
// no wait between attempts.
type flakyJob struct {
	N int `json:"n"`
}

// Kind implements job.Args.
func (flakyJob) Kind() string { return flakyType }

// Defaults implements job.Args.
func (flakyJob) Defaults() job.Defaults {
	return job.Defaults{Queue: "default", MaxAttempts: 3, Backoff: []time.Duration{0}}
}

// gatedService is the service whose gate the limits scenario's no-ops ask,
// and limitsNeverHit its [limits]: the highest rate errand takes (1000 a
// second) with a bucket of a million, so a drain never empties it and the
// scenario measures what asking the gate costs, not waiting.
const gatedService = "slack"

var limitsNeverHit = map[string]config.Limit{gatedService: {Rate: "1000/1s", Burst: 1_000_000}}

// flakyFailures is how many attempts of a flaky job fail before one succeeds.
const flakyFailures = 2

// errandConfig is errand's default configuration (no file, no environment)
// pointed at the bench Redis.
func errandConfig(addr string, concurrency int, queues, logLevel string) (*config.Config, error) {
	cfg, err := config.Load("", false, nil, nil)
	if err != nil {
		return nil, err
	}
	if isCluster(addr) {
		cfg.Redis.Mode, cfg.Redis.Addrs = config.RedisCluster, clusterAddrs(addr)
	} else {
		cfg.Redis.Addr = addr
	}
	if concurrency > 0 {
		cfg.Worker.Concurrency = concurrency
	}
	cfg.Worker.Queues = queues
	if logLevel != "" {
		cfg.Log.Level = logLevel
	}
	return cfg, nil
}

// handlers are the worker-side handlers of the bench's job types; nil fields
// register the type for enqueueing only.
type handlers struct {
	noop  func(ctx context.Context, a jobs.Noop) error
	probe func(ctx context.Context, p probeJob) error
	flaky func(ctx context.Context, f flakyJob) error
}

// errandRegistry registers ops:noop, the bench's types and the escalation
// digest (which the worker may queue on a final failure).
func errandRegistry(cfg *config.Config, h *handlers) (*job.Registry, error) {
	reg := job.NewRegistry(cfg)
	if h == nil {
		job.Register[jobs.Noop](reg, nil)
		job.Register[probeJob](reg, nil)
		job.Register[flakyJob](reg, nil)
		job.Register[jobs.Digest](reg, nil)
	} else {
		job.Register(reg, h.noop)
		job.Register(reg, h.probe)
		job.Register(reg, h.flaky)
		job.Register(reg, func(context.Context, jobs.Digest) error { return nil })
	}
	if err := reg.Configure(cfg.Jobs); err != nil {
		return nil, err
	}
	return reg, nil
}

// paddedProbe returns probe job n whose JSON payload is exactly size bytes
// (or as small as it gets when size is too small).
func paddedProbe(n, size int) (probeJob, []byte, error) {
	p := probeJob{N: n}
	b, err := json.Marshal(p)
	if err != nil {
		return p, nil, err
	}
	if extra := size - len(b); extra > 0 {
		p.Pad = strings.Repeat("x", extra)
		if b, err = json.Marshal(p); err != nil {
			return p, nil, err
		}
	}
	if size > 0 && len(b) != size {
		return p, b, fmt.Errorf("payload of job %d is %d bytes, not %d", n, len(b), size)
	}
	return p, b, nil
}
