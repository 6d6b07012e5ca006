// Package worklog is what a worker writes to its log of the jobs done, at any
// pace: a line for each while they are few, a summary while they are many (at
// tens of thousands of jobs a second, a line each would be the worker's
// bottleneck).
package worklog

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// PerSecond is how many jobs done in a second get a line of their own
	// at INFO: a person watching the log sees each email go out, while a
	// drain of thousands a second is not slowed by writing them.
	PerSecond = 10
	// SummaryEvery is how often, while more than PerSecond finish a second,
	// one line counts the jobs done without a line of their own.
	SummaryEvery = 10 * time.Second
)

// Successes decides which jobs done get a line of their own, and writes the
// summaries of the others. Its cost per job at a high rate is one atomic
// add: no clock read, no lock, no allocation.
type Successes struct {
	log         *slog.Logger
	info, debug bool         // the levels the log writes
	n           atomic.Int64 // jobs done in the current second
	armed       atomic.Bool  // the end of the current second is scheduled

	mu       sync.Mutex
	unlisted int64     // jobs done without a line since since
	since    time.Time // start of the current summary
}

// NewSuccesses returns the successes' log for log, whose level is fixed.
func NewSuccesses(log *slog.Logger) *Successes {
	ctx := context.Background()
	return &Successes{log: log, info: log.Enabled(ctx, slog.LevelInfo), debug: log.Enabled(ctx, slog.LevelDebug)}
}

// Line records one job done and says whether it gets a line of its own, and
// at which level: INFO for the first PerSecond of a second; DEBUG for the
// others when the log writes DEBUG; otherwise none, and the next summary
// counts it.
func (s *Successes) Line() (slog.Level, bool) {
	if !s.info {
		return 0, false
	}
	k := s.n.Add(1)
	if k == 1 && s.armed.CompareAndSwap(false, true) {
		time.AfterFunc(time.Second, s.tick)
	}
	switch {
	case k <= PerSecond:
		return slog.LevelInfo, true
	case s.debug:
		return slog.LevelDebug, true
	}
	return 0, false
}

// tick ends a second: it counts the jobs of that second that got no line,
// writes the summary when one is due, and schedules the next second's end
// while jobs are done.
func (s *Successes) tick() {
	c := s.n.Swap(0)
	s.count(c, false)
	if c == 0 {
		s.armed.Store(false)
		// A job done since the Swap found armed still set and scheduled
		// nothing: its second's end is scheduled here.
		if s.n.Load() == 0 || !s.armed.CompareAndSwap(false, true) {
			return
		}
	}
	time.AfterFunc(time.Second, s.tick)
}

// count adds the jobs of a second that got no line, and writes the summary
// when SummaryEvery has passed, when the pace fell back to a line per job
// (so the summary comes before those lines), or when forced.
func (s *Successes) count(done int64, force bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if done > PerSecond && !s.debug {
		if s.unlisted == 0 {
			s.since = time.Now().Add(-time.Second)
		}
		s.unlisted += done - PerSecond
	}
	if s.unlisted == 0 || (!force && done > PerSecond && time.Since(s.since) < SummaryEvery) {
		return
	}
	s.log.Info(fmt.Sprintf("jobs done, too many for a line each (over %d a second)", PerSecond),
		"jobs", s.unlisted, "over", time.Since(s.since).Round(time.Second).String())
	s.unlisted = 0
}

// Flush writes the summary of the jobs done so far without a line: when the
// worker stops.
func (s *Successes) Flush() {
	if s.info {
		s.count(s.n.Swap(0), true)
	}
}
