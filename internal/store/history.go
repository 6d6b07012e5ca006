package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/redact"
)

// History is what the database keeps of jobs beyond the outbox: every job
// queued with the entity it is for (written in the transaction that queues
// it), each attempt's outcome (written by the workers in batches), and the
// durable failed list.
type History interface {
	// MaskPayloads sets the redactor of the payloads and errors the history
	// keeps (escalation.redact); until it is called, redact's own words.
	MaskPayloads(r *redact.Redactor)
	// RecordQueued writes the "queued" of jobs put into Redis without the
	// outbox (errand enqueue, a retry from the failed list).
	RecordQueued(ctx context.Context, jobs []job.Envelope) error
	// RecordOutcomes writes attempts and final failures in one transaction.
	// Each failed job's History is read back from its attempts, this batch's
	// included.
	RecordOutcomes(ctx context.Context, attempts []Attempt, failed []FailedJob) error
	// AdoptFailed writes the failed jobs the database does not hold yet
	// (found in Redis's archive only) and returns how many those were.
	AdoptFailed(ctx context.Context, jobs []FailedJob) (int, error)
	// FailedJobs lists the failed list, oldest failure first.
	FailedJobs(ctx context.Context, f FailedFilter) ([]FailedJob, error)
	// FailedJob returns one job of the failed list, or ErrNotFound.
	FailedJob(ctx context.Context, id string) (*FailedJob, error)
	// RemoveFailed takes jobs off the failed list; requeued marks them queued
	// again in their history.
	RemoveFailed(ctx context.Context, ids []string, requeued bool) error
	// Timeline returns every job kept for entity, oldest first.
	Timeline(ctx context.Context, entity string) ([]TimelineJob, error)
	// JobEntity returns the entity job id was queued for ("" for none), or
	// ErrNotFound.
	JobEntity(ctx context.Context, id string) (string, error)
	// PruneHistory deletes the jobs queued and attempts made before before
	// (not the failed list) and returns how many rows it deleted.
	PruneHistory(ctx context.Context, before time.Time) (int64, error)
}

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

// redactor masks what the history keeps; set once at start, read by every
// insert.
type redactor struct {
	r atomic.Pointer[redact.Redactor]
}

// payload is p as the history keeps it. A nil Redactor masks redact's own
// words.
func (r *redactor) payload(p []byte) string { return r.r.Load().Payload(p) }

func (r *redactor) text(s string) string {
	if s == "" {
		return ""
	}
	return r.r.Load().Text(s)
}

func (s *sqliteStore) MaskPayloads(r *redact.Redactor) { s.shown.r.Store(r) }

// queued writes e's "queued" into its history within tx.
func (s *sqliteStore) queued(ctx context.Context, tx *sql.Tx, e job.Envelope) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO history_jobs (id, entity, type, queue, state, queued_at_ms, payload)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET state = excluded.state`,
		e.ID, e.Entity, e.Type, e.Queue, queuedState(e), e.QueuedAt.UnixMilli(), s.shown.payload(e.Payload)); err != nil {
		return fmt.Errorf("history: %w", err)
	}
	return nil
}

func (s *sqliteStore) RecordQueued(ctx context.Context, jobs []job.Envelope) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		for _, e := range jobs {
			if err := s.queued(ctx, tx, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: record queued: %w", err)
	}
	return nil
}

func (s *sqliteStore) RecordOutcomes(ctx context.Context, attempts []Attempt, failed []FailedJob) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		ins, err := tx.PrepareContext(ctx, `INSERT INTO history_attempts (job_id, number, at_ms, outcome, error) VALUES (?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer ins.Close()
		upd, err := tx.PrepareContext(ctx, `UPDATE history_jobs SET state = ? WHERE id = ?`)
		if err != nil {
			return err
		}
		defer upd.Close()
		for _, a := range attempts {
			if _, err := ins.ExecContext(ctx, a.JobID, a.Number, a.At.UnixMilli(), a.Outcome, s.shown.text(a.Error)); err != nil {
				return err
			}
			if _, err := upd.ExecContext(ctx, stateAfter(a.Outcome), a.JobID); err != nil {
				return err
			}
		}
		for _, f := range failed {
			hist, err := sqliteAttempts(ctx, tx, f.ID)
			if err != nil {
				return err
			}
			f.History = hist
			if _, err := s.putFailed(ctx, tx, f, true); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: record outcomes: %w", err)
	}
	return nil
}

func sqliteAttempts(ctx context.Context, tx *sql.Tx, id string) ([]AttemptAt, error) {
	rows, err := tx.QueryContext(ctx, `SELECT at_ms, error FROM history_attempts WHERE job_id = ? ORDER BY seq`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AttemptAt
	for rows.Next() {
		var at int64
		var a AttemptAt
		if err := rows.Scan(&at, &a.Error); err != nil {
			return nil, err
		}
		a.At = time.UnixMilli(at)
		out = append(out, a)
	}
	return out, rows.Err()
}

// putFailed writes f into the failed list: replacing a row of the same job
// (a job retried from the list that failed again), or, when replace is
// false, only if there is none.
func (s *sqliteStore) putFailed(ctx context.Context, tx *sql.Tx, f FailedJob, replace bool) (int64, error) {
	hist, err := json.Marshal(orEmpty(f.History))
	if err != nil {
		return 0, err
	}
	conflict := `DO NOTHING`
	if replace {
		conflict = `DO UPDATE SET type = excluded.type, queue = excluded.queue, entity = excluded.entity, payload = excluded.payload,
			run_payload = excluded.run_payload, attempts = excluded.attempts, max_attempts = excluded.max_attempts,
			error = excluded.error, history = excluded.history, queued_at_ms = excluded.queued_at_ms,
			failed_at_ms = excluded.failed_at_ms, callback = excluded.callback`
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO failed_jobs (id, type, queue, entity, payload, run_payload, attempts, max_attempts,
		error, history, queued_at_ms, failed_at_ms, callback) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) `+conflict,
		f.ID, f.Type, f.Queue, f.Entity, s.shown.payload(f.RunPayload), f.RunPayload, f.Attempts, f.MaxAttempts,
		s.shown.text(f.Error), string(hist), f.QueuedAt.UnixMilli(), f.FailedAt.UnixMilli(), f.Callback)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func orEmpty(h []AttemptAt) []AttemptAt {
	if h == nil {
		return []AttemptAt{}
	}
	return h
}

func (s *sqliteStore) AdoptFailed(ctx context.Context, jobs []FailedJob) (int, error) {
	n := 0
	err := s.tx(ctx, func(tx *sql.Tx) error {
		n = 0
		for _, f := range jobs {
			if len(f.History) == 0 {
				hist, err := sqliteAttempts(ctx, tx, f.ID)
				if err != nil {
					return err
				}
				f.History = hist
			}
			k, err := s.putFailed(ctx, tx, f, false)
			if err != nil {
				return err
			}
			n += int(k)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: adopt failed jobs: %w", err)
	}
	return n, nil
}

// failedColumns are what FailedJobs and FailedJob read, in scanFailed's
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

func (s *sqliteStore) FailedJobs(ctx context.Context, f FailedFilter) ([]FailedJob, error) {
	where, args := failedWhere(f)
	rows, err := s.db.QueryContext(ctx, `SELECT `+failedColumns+` FROM failed_jobs`+where+` ORDER BY failed_at_ms, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: failed list: %w", err)
	}
	defer rows.Close()
	var out []FailedJob
	for rows.Next() {
		j, err := scanFailed(rows.Scan)
		if err != nil {
			return nil, fmt.Errorf("store: failed list: %w", err)
		}
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: failed list: %w", err)
	}
	return out, nil
}

func (s *sqliteStore) FailedJob(ctx context.Context, id string) (*FailedJob, error) {
	j, err := scanFailed(s.db.QueryRowContext(ctx, `SELECT `+failedColumns+` FROM failed_jobs WHERE id = ?`, id).Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: failed job: %w", err)
	}
	return &j, nil
}

// removeChunk is how many ids one statement removes: SQLite allows 32,766
// parameters, PostgreSQL 65,535.
const removeChunk = 1000

func (s *sqliteStore) RemoveFailed(ctx context.Context, ids []string, requeued bool) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		for len(ids) > 0 {
			chunk := ids[:min(len(ids), removeChunk)]
			ids = ids[len(chunk):]
			args := make([]any, len(chunk))
			for i, id := range chunk {
				args[i] = id
			}
			in := `(?` + strings.Repeat(",?", len(chunk)-1) + `)`
			if _, err := tx.ExecContext(ctx, `DELETE FROM failed_jobs WHERE id IN `+in, args...); err != nil {
				return err
			}
			if requeued {
				if _, err := tx.ExecContext(ctx, `UPDATE history_jobs SET state = 'pending' WHERE id IN `+in, args...); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: remove from the failed list: %w", err)
	}
	return nil
}

func (s *sqliteStore) Timeline(ctx context.Context, entity string) ([]TimelineJob, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT j.id, j.type, j.queue, j.state, j.queued_at_ms, a.at_ms, a.error
		FROM history_jobs j LEFT JOIN history_attempts a ON a.job_id = j.id
		WHERE j.entity = ? ORDER BY j.queued_at_ms, j.id, a.seq`, entity)
	if err != nil {
		return nil, fmt.Errorf("store: timeline: %w", err)
	}
	defer rows.Close()
	return scanTimeline(rows.Next, rows.Scan, rows.Err)
}

// scanTimeline folds rows of (job, attempt or NULLs), ordered by job, into
// timeline jobs.
func scanTimeline(next func() bool, scan func(...any) error, rowsErr func() error) ([]TimelineJob, error) {
	out := []TimelineJob{}
	for next() {
		var j TimelineJob
		var queued int64
		var at *int64
		var errText *string
		if err := scan(&j.ID, &j.Type, &j.Queue, &j.State, &queued, &at, &errText); err != nil {
			return nil, fmt.Errorf("store: timeline: %w", err)
		}
		if n := len(out); n == 0 || out[n-1].ID != j.ID {
			j.QueuedAt = time.UnixMilli(queued)
			j.Attempts = []AttemptAt{}
			out = append(out, j)
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
		return nil, fmt.Errorf("store: timeline: %w", err)
	}
	return out, nil
}

func (s *sqliteStore) JobEntity(ctx context.Context, id string) (string, error) {
	var entity string
	err := s.db.QueryRowContext(ctx, `SELECT entity FROM history_jobs WHERE id = ?`, id).Scan(&entity)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("store: job entity: %w", err)
	}
	return entity, nil
}

func (s *sqliteStore) PruneHistory(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		n = 0
		for _, q := range []string{`DELETE FROM history_attempts WHERE at_ms < ?`, `DELETE FROM history_jobs WHERE queued_at_ms < ?`} {
			res, err := tx.ExecContext(ctx, q, before.UnixMilli())
			if err != nil {
				return err
			}
			k, _ := res.RowsAffected()
			n += k
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: prune history: %w", err)
	}
	return n, nil
}
