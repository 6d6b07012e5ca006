package worklog

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// logBuffer is a log's text, written by several goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newLog(level slog.Level) (*slog.Logger, *logBuffer) {
	buf := &logBuffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: level})), buf
}

// done records k jobs done on s, writing the lines it is told to, and
// returns how many got one.
func done(s *Successes, log *slog.Logger, k int) int {
	lines := 0
	for range k {
		if level, ok := s.Line(); ok {
			log.Log(context.Background(), level, "job done")
			lines++
		}
	}
	return lines
}

// While few jobs are done a second, each gets its line at INFO and no
// summary is written.
func TestEachJobDoneHasALineWhileFew(t *testing.T) {
	log, buf := newLog(slog.LevelInfo)
	s := NewSuccesses(log)
	if n := done(s, log, PerSecond); n != PerSecond {
		t.Fatalf("%d of %d jobs got a line", n, PerSecond)
	}
	s.Flush()
	if n := strings.Count(buf.String(), "level=INFO msg=\"job done\""); n != PerSecond || strings.Contains(buf.String(), "jobs done") {
		t.Fatalf("log:\n%s", buf)
	}
}

// Many jobs done at once: the first PerSecond get their line, the others are
// counted in one summary line, written once the pace falls (here: nothing
// more is done), so that it comes before the next lines of their own.
func TestManyJobsDoneAreSummarised(t *testing.T) {
	log, buf := newLog(slog.LevelInfo)
	s := NewSuccesses(log)
	var wg sync.WaitGroup
	lines := make([]int, 8)
	for i := range lines {
		wg.Go(func() { lines[i] = done(s, log, 1000) })
	}
	wg.Wait()
	total := 0
	for _, n := range lines {
		total += n
	}
	if total < PerSecond || total > 8000/2 {
		t.Fatalf("%d of 8000 jobs got a line", total)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(buf.String(), "jobs done") {
		if time.Now().After(deadline) {
			t.Fatalf("no summary 10 s after the jobs:\n%s", buf)
		}
		time.Sleep(50 * time.Millisecond)
	}
	summarised := 0
	for _, m := range regexp.MustCompile(`msg="jobs done[^"]*" jobs=(\d+)`).FindAllStringSubmatch(buf.String(), -1) {
		n, _ := strconv.Atoi(m[1])
		summarised += n
	}
	if total+summarised != 8000 || strings.Count(buf.String(), `msg="job done"`) != total {
		t.Fatalf("%d lines and %d summarised, want 8000:\n%s", total, summarised, buf)
	}
	t.Logf("8000 jobs done at once: %d lines of their own, %d in the summary", total, summarised)
	// The pace is low again: the next job has its own line.
	if n := done(s, log, 1); n != 1 {
		t.Fatal("a job done after the summary got no line")
	}
}

// Flush writes the summary of the jobs done so far at once, as the worker
// stops.
func TestFlushWritesTheSummaryAtOnce(t *testing.T) {
	log, buf := newLog(slog.LevelInfo)
	s := NewSuccesses(log)
	lines := done(s, log, 500)
	s.Flush()
	if !strings.Contains(buf.String(), "jobs="+strconv.Itoa(500-lines)) {
		t.Fatalf("%d lines; log:\n%s", lines, buf)
	}
}

// With the log at DEBUG every job done has its line (the first of each
// second at INFO); with the log at WARN none has, and nothing is counted.
func TestTheLogLevelDecides(t *testing.T) {
	log, buf := newLog(slog.LevelDebug)
	s := NewSuccesses(log)
	if n := done(s, log, 100); n != 100 {
		t.Fatalf("at DEBUG %d of 100 jobs got a line", n)
	}
	s.Flush()
	if strings.Count(buf.String(), "level=DEBUG") != 100-PerSecond || strings.Contains(buf.String(), "jobs done") {
		t.Fatalf("at DEBUG:\n%s", buf)
	}
	log, buf = newLog(slog.LevelWarn)
	s = NewSuccesses(log)
	done(s, log, 100)
	s.Flush()
	if buf.String() != "" {
		t.Fatalf("at WARN:\n%s", buf)
	}
}

// What a job done costs the log at a high rate, 8 runners at once: Line
// once the second's PerSecond lines are written, against what the worker did
// before for every job (ask whether DEBUG is on, and write nothing).
func BenchmarkJobDoneAtAHighRate(b *testing.B) {
	log := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	b.Run("line-or-count", func(b *testing.B) {
		s := NewSuccesses(log)
		b.SetParallelism(4)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if level, ok := s.Line(); ok {
					log.Log(context.Background(), level, "job done")
				}
			}
		})
	})
	b.Run("before-debug-check", func(b *testing.B) {
		b.SetParallelism(4)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if log.Enabled(context.Background(), slog.LevelDebug) {
					log.Debug("job done")
				}
			}
		})
	})
}
