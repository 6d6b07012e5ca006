// Package history records what happens to each job in the database, for the
// timeline of an entity and the durable failed list: a worker's attempts go
// through a Writer, which writes them in batches (one transaction each) so
// the worker is not slowed, and a final failure is durable before the job
// is archived. Prune keeps the history to [history] retention.
package history

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/rdb"
	"github.com/errandhq/errand/internal/store"
)

// Batching: a batch is written when it holds maxBatch records, linger after
// its first record arrived, or at once when it holds a final failure (a
// runner waits for that one).
const (
	maxBatch = 1000
	linger   = 50 * time.Millisecond
	// failedWait is how long a final failure waits for the database before
	// the job is archived in Redis regardless (see Failed).
	failedWait = 10 * time.Second
	// buffered is how many records wait for the writer before a runner
	// does: a burst of jobs (a queue drained at tens of thousands a second,
	// faster than SQLite takes rows) is written just after it, not during
	// it; only a sustained rate above the database's slows the worker to
	// its pace. About 130 bytes each.
	buffered = 32 * maxBatch
)

// headerQueued is the header internal/queue stamps a job's first queuing in
// (milliseconds).
const headerQueued = "errand-queued-ms"

// headerCallback marks a job whose ending is reported to a callback URL.
const headerCallback = "errand-callback"

// record is one attempt, or a final failure with its last attempt.
type record struct {
	attempt store.Attempt
	failed  *store.FailedJob
	done    chan error // a final failure's writer waits on it
}

// Writer records a worker's attempts: queue.Recorder.
type Writer struct {
	st   store.History
	reg  *job.Registry
	log  *slog.Logger
	in   chan record
	stop sync.Once
	gone chan struct{}
	now  func() time.Time
}

// NewWriter starts a writer into st; Close flushes and stops it.
func NewWriter(st store.History, reg *job.Registry, log *slog.Logger) *Writer {
	w := &Writer{st: st, reg: reg, log: log, in: make(chan record, buffered), gone: make(chan struct{}), now: time.Now}
	go w.loop()
	return w
}

// Done records a completed attempt.
func (w *Writer) Done(j *rdb.Fetched) {
	w.in <- record{attempt: w.attempt(j, store.OutcomeDone, "")}
}

// Retry records a failed attempt that will run again.
func (w *Writer) Retry(j *rdb.Fetched, errMsg string) {
	w.in <- record{attempt: w.attempt(j, store.OutcomeRetry, errMsg)}
}

// Failed records a final failure in the failed list and returns once it is
// committed. If the database cannot take it within failedWait, it logs the
// failure at ERROR and returns: the job is archived in Redis all the same
// (errand's archive keeps every failure), and the failed list's next read
// (errand failed …) adopts it from there. Nothing vanishes.
func (w *Writer) Failed(j *rdb.Fetched, errMsg string) {
	r := record{attempt: w.attempt(j, store.OutcomeFailed, errMsg), done: make(chan error, 1)}
	f := w.failedJob(j, r.attempt)
	r.failed = &f
	w.in <- r
	var err error
	select {
	case err = <-r.done:
	case <-time.After(failedWait):
		err = context.DeadlineExceeded
	}
	if err != nil {
		w.log.Error("final failure not written to the database; it stays in Redis's failed list, and errand failed list adopts it from there",
			"job_id", j.ID, "type", f.Type, "queue", f.Queue, "error", err.Error())
	}
}

func (w *Writer) attempt(j *rdb.Fetched, outcome, errMsg string) store.Attempt {
	return store.Attempt{JobID: j.ID, Number: j.Msg.Retried + 1, At: w.now(), Outcome: outcome, Error: errMsg}
}

// failedJob is j, failed for good with a, as the failed list keeps it.
func (w *Writer) failedJob(j *rdb.Fetched, a store.Attempt) store.FailedJob {
	f := store.FailedJob{ID: j.ID, Type: j.Msg.Type, Queue: j.Queue, RunPayload: j.Msg.Payload,
		Attempts: a.Number, Error: a.Error, FailedAt: a.At}
	if f.Type == "" { // an unreadable job: Msg is empty
		f.Type = "unknown"
	}
	if f.RunPayload == nil {
		f.RunPayload = []byte{}
	}
	FillFromRegistry(w.reg, &f, j.Msg.Headers)
	return f
}

// FillFromRegistry completes f from what the registry and the job's headers
// know: its entity, its attempts allowed, when it was first queued, whether
// it has a callback.
func FillFromRegistry(reg *job.Registry, f *store.FailedJob, headers map[string]string) {
	if def, err := reg.Lookup(f.Type); err == nil {
		f.Entity = def.Entity(f.RunPayload)
		if !def.Unbounded {
			f.MaxAttempts = def.MaxAttempts
			f.Attempts = min(f.Attempts, f.MaxAttempts)
		}
	}
	// The header is left out when the job's id tells the instant.
	if ms, err := strconv.ParseInt(headers[headerQueued], 10, 64); err == nil {
		f.QueuedAt = time.UnixMilli(ms)
	} else if t, ok := job.IDTime(f.ID); ok {
		f.QueuedAt = t
	}
	f.Callback = headers[headerCallback] != ""
}

// Close writes what is waiting and stops the writer. Call it once the
// worker has stopped recording.
func (w *Writer) Close() {
	w.stop.Do(func() { close(w.in) })
	<-w.gone
}

func (w *Writer) loop() {
	defer close(w.gone)
	var batch []record
	var timer <-chan time.Time
	for {
		select {
		case r, ok := <-w.in:
			if !ok {
				w.flush(batch)
				return
			}
			batch = append(batch, r)
			if len(batch) == 1 {
				timer = time.After(linger)
			}
			if len(batch) < maxBatch && r.failed == nil {
				continue
			}
		case <-timer:
		}
		w.flush(batch)
		batch, timer = batch[:0], nil
	}
}

// flush writes batch in one transaction, trying twice: a batch the database
// refuses is logged and dropped, so a database outage never stalls the
// worker (its final failures stay in Redis's failed list; see Failed).
func (w *Writer) flush(batch []record) {
	if len(batch) == 0 {
		return
	}
	attempts := make([]store.Attempt, len(batch))
	var failed []store.FailedJob
	for i, r := range batch {
		attempts[i] = r.attempt
		if r.failed != nil {
			failed = append(failed, *r.failed)
		}
	}
	var err error
	for try := range 2 {
		if try > 0 {
			time.Sleep(200 * time.Millisecond)
		}
		ctx, cancel := context.WithTimeout(context.Background(), failedWait/2)
		err = w.st.RecordOutcomes(ctx, attempts, failed)
		cancel()
		if err == nil {
			break
		}
	}
	if err != nil {
		w.log.Error("job history: attempts not recorded", "attempts", len(attempts), "error", err.Error())
	}
	for _, r := range batch {
		if r.done != nil {
			r.done <- err
		}
	}
}
