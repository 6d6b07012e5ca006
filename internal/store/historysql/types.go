// Package historysql is the SQL of errand's job history — the jobs queued
// with their entity, each attempt, the durable failed list — for SQLite and
// PostgreSQL. internal/store runs it within its own transactions (a job's
// "queued" is written with its outbox row) and exposes it as store.History.
package historysql

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/redact"
)

// An attempt's outcome, as the history records it.
const (
	OutcomeDone   = "done"   // the job completed
	OutcomeRetry  = "retry"  // it failed and will run again
	OutcomeFailed = "failed" // it failed for good
)

// Attempt is one run of a job.
type Attempt struct {
	JobID   string
	Number  int // from 1
	At      time.Time
	Outcome string // OutcomeDone, OutcomeRetry or OutcomeFailed
	Error   string // "" when done
}

// stateAfter is a job's state after an attempt with outcome (see rdb's
// states, the names GET /api/jobs/{id} uses).
func stateAfter(outcome string) string {
	switch outcome {
	case OutcomeDone:
		return "completed"
	case OutcomeRetry:
		return "retrying"
	}
	return "failed"
}

// queuedState is a job's state as it is queued.
func queuedState(e job.Envelope) string {
	if e.DueAt.After(e.QueuedAt) {
		return "scheduled"
	}
	return "pending"
}

// AttemptAt is one attempt as the timeline and the failed list show it.
type AttemptAt struct {
	At    time.Time `json:"at"`
	Error string    `json:"error,omitempty"`
}

// FailedJob is one job of the durable failed list.
type FailedJob struct {
	ID          string      `json:"id"`
	Type        string      `json:"type"`
	Queue       string      `json:"queue"`
	Entity      string      `json:"entity,omitempty"`
	Attempts    int         `json:"attempts"`
	MaxAttempts int         `json:"max_attempts"`
	Error       string      `json:"error"`
	FailedAt    time.Time   `json:"failed_at"`
	QueuedAt    time.Time   `json:"queued_at,omitzero"`
	Payload     string      `json:"payload"` // redacted
	History     []AttemptAt `json:"history"`
	// RunPayload is the payload as queued (what Redis held), to queue the
	// job again after Redis lost it; never shown.
	RunPayload []byte `json:"-"`
	Callback   bool   `json:"-"`
}

// FailedFilter narrows FailedJobs.
type FailedFilter struct {
	Queue  string    // "" for every queue
	Before time.Time // failed before it; zero for any time
}

// TimelineJob is one job of an entity's timeline (GET /api/timeline).
type TimelineJob struct {
	ID       string      `json:"id"`
	Type     string      `json:"type"`
	Queue    string      `json:"queue"`
	State    string      `json:"state"`
	QueuedAt time.Time   `json:"queued_at"`
	Attempts []AttemptAt `json:"attempts"`
}

// ErrNotFound is returned for a job the history does not hold.
var ErrNotFound = errors.New("not found")

// Masker masks what the history keeps; set once at start, read by every
// insert. The zero value masks redact's own words.
type Masker struct {
	r atomic.Pointer[redact.Redactor]
}

// Use sets the redactor (escalation.redact).
func (m *Masker) Use(r *redact.Redactor) { m.r.Store(r) }

// payload is p as the history keeps it.
func (m *Masker) payload(p []byte) string { return m.r.Load().Payload(p) }

func (m *Masker) text(s string) string {
	if s == "" {
		return ""
	}
	return m.r.Load().Text(s)
}

// failedColumns are what the failed list's reads read, in scanFailed's
// order.
const failedColumns = `id, type, queue, entity, payload, run_payload, attempts, max_attempts, error, history, queued_at_ms, failed_at_ms, callback`

// scanFailed reads one row of failedColumns.
func scanFailed(scan func(...any) error) (FailedJob, error) {
	var f FailedJob
	var hist string
	var queued, failedAt int64
	if err := scan(&f.ID, &f.Type, &f.Queue, &f.Entity, &f.Payload, &f.RunPayload, &f.Attempts, &f.MaxAttempts,
		&f.Error, &hist, &queued, &failedAt, &f.Callback); err != nil {
		return f, err
	}
	if err := json.Unmarshal([]byte(hist), &f.History); err != nil {
		return f, fmt.Errorf("history of %s: %w", f.ID, err)
	}
	if queued > 0 {
		f.QueuedAt = time.UnixMilli(queued)
	}
	f.FailedAt = time.UnixMilli(failedAt)
	return f, nil
}

// failedWhere is f as a WHERE clause with ? placeholders, and its arguments.
func failedWhere(f FailedFilter) (string, []any) {
	var conds []string
	var args []any
	if f.Queue != "" {
		conds = append(conds, "queue = ?")
		args = append(args, f.Queue)
	}
	if !f.Before.IsZero() {
		conds = append(conds, "failed_at_ms < ?")
		args = append(args, f.Before.UnixMilli())
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// scanTimeline folds rows of (job, when it completed or NULL, failed attempt
// or NULLs), ordered by job, into timeline jobs: the failed attempts, then
// the one that completed it.
func scanTimeline(next func() bool, scan func(...any) error, rowsErr func() error) ([]TimelineJob, error) {
	out := []TimelineJob{}
	var doneAt []*int64 // of each job in out
	for next() {
		var j TimelineJob
		var queued int64
		var done, at *int64
		var errText *string
		if err := scan(&j.ID, &j.Type, &j.Queue, &j.State, &queued, &done, &at, &errText); err != nil {
			return nil, fmt.Errorf("timeline: %w", err)
		}
		if n := len(out); n == 0 || out[n-1].ID != j.ID {
			j.QueuedAt = time.UnixMilli(queued)
			j.Attempts = []AttemptAt{}
			out = append(out, j)
			doneAt = append(doneAt, done)
		}
		if at != nil {
			a := AttemptAt{At: time.UnixMilli(*at)}
			if errText != nil {
				a.Error = *errText
			}
			last := &out[len(out)-1]
			last.Attempts = append(last.Attempts, a)
		}
	}
	if err := rowsErr(); err != nil {
		return nil, fmt.Errorf("timeline: %w", err)
	}
	for i, d := range doneAt {
		if d != nil {
			out[i].Attempts = append(out[i].Attempts, AttemptAt{At: time.UnixMilli(*d)})
		}
	}
	return out, nil
}

// splitDone parts attempts into the failed ones (a row each) and those that
// completed their job (a time on the job's row).
func splitDone(attempts []Attempt) (failures, done []Attempt) {
	for _, a := range attempts {
		if a.Outcome == OutcomeDone {
			done = append(done, a)
		} else {
			failures = append(failures, a)
		}
	}
	return failures, done
}

func orEmpty(h []AttemptAt) []AttemptAt {
	if h == nil {
		return []AttemptAt{}
	}
	return h
}

// stateGroup is the jobs whose last attempt left them in one state.
type stateGroup struct {
	state string
	ids   []string
}

// lastStates groups the jobs of attempts by the state their last attempt
// (in order) left them in.
func lastStates(attempts []Attempt) []stateGroup {
	last := make(map[string]string, len(attempts))
	for _, a := range attempts {
		last[a.JobID] = stateAfter(a.Outcome)
	}
	var groups []stateGroup
	at := map[string]int{}
	for id, state := range last {
		i, ok := at[state]
		if !ok {
			i = len(groups)
			at[state] = i
			groups = append(groups, stateGroup{state: state})
		}
		groups[i].ids = append(groups[i].ids, id)
	}
	return groups
}

// rows is what database/sql's and pgx's query results share.
type rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// collectFailed reads every failed job of rows.
func collectFailed(rows rows) ([]FailedJob, error) {
	var out []FailedJob
	for rows.Next() {
		j, err := scanFailed(rows.Scan)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}
