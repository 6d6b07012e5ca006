package historysql

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/errandhq/errand/internal/job"
)

// SQLite's statements: writes within the caller's transaction (the store
// holds SQLite's one write lock), reads on its database.

// Queued writes e's "queued" into its history.
func Queued(ctx context.Context, tx *sql.Tx, m *Masker, e job.Envelope) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO history_jobs (id, entity, type, queue, state, queued_at_ms, payload)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET state = excluded.state`,
		e.ID, e.Entity, e.Type, e.Queue, queuedState(e), e.QueuedAt.UnixMilli(), m.payload(e.Payload)); err != nil {
		return fmt.Errorf("history: %w", err)
	}
	return nil
}

// RecordOutcomes writes attempts and final failures; each failed job's
// History is read back from its attempts, these included. Rows go in
// statements of many (a statement per row is most of the cost in SQLite):
// the attempts, then each job's last state, grouped by state.
func RecordOutcomes(ctx context.Context, tx *sql.Tx, m *Masker, attempts []Attempt, failed []FailedJob) error {
	failures, done := splitDone(attempts)
	for rest := failures; len(rest) > 0; {
		part := rest[:min(len(rest), rowsPerInsert)]
		rest = rest[len(part):]
		args := make([]any, 0, 5*len(part))
		for _, a := range part {
			args = append(args, a.JobID, a.Number, a.At.UnixMilli(), a.Outcome, m.text(a.Error))
		}
		q := `INSERT INTO history_attempts (job_id, number, at_ms, outcome, error) VALUES (?, ?, ?, ?, ?)` +
			strings.Repeat(`, (?, ?, ?, ?, ?)`, len(part)-1)
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return err
		}
	}
	for _, g := range lastStates(failures) {
		for rest := g.ids; len(rest) > 0; {
			part := rest[:min(len(rest), removeChunk)]
			rest = rest[len(part):]
			args := make([]any, 0, len(part)+1)
			args = append(args, g.state)
			for _, id := range part {
				args = append(args, id)
			}
			q := `UPDATE history_jobs SET state = ? WHERE id IN (?` + strings.Repeat(",?", len(part)-1) + `)`
			if _, err := tx.ExecContext(ctx, q, args...); err != nil {
				return err
			}
		}
	}
	// Last: a job that failed and then completed in one batch is completed.
	for rest := done; len(rest) > 0; {
		part := rest[:min(len(rest), rowsPerInsert)]
		rest = rest[len(part):]
		args := make([]any, 0, 2*len(part))
		for _, a := range part {
			args = append(args, a.JobID, a.At.UnixMilli())
		}
		q := `UPDATE history_jobs SET state = 'completed', done_at_ms = d.at FROM (SELECT column1 AS id, column2 AS at FROM (VALUES (?, ?)` +
			strings.Repeat(`, (?, ?)`, len(part)-1) + `)) AS d WHERE history_jobs.id = d.id`
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return err
		}
	}
	var err error
	for _, f := range failed {
		if f.History, err = attemptsOf(ctx, tx, f.ID); err != nil {
			return err
		}
		if _, err := putFailed(ctx, tx, m, f, true); err != nil {
			return err
		}
	}
	return nil
}

// rowsPerInsert is how many attempts one INSERT writes (5 parameters each;
// SQLite allows 32,766).
const rowsPerInsert = 500

func attemptsOf(ctx context.Context, tx *sql.Tx, id string) ([]AttemptAt, error) {
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

// conflictReplace replaces a failed job's row by a new failure of the same
// job (one retried from the list that failed again).
const conflictReplace = `DO UPDATE SET type = excluded.type, queue = excluded.queue, entity = excluded.entity, payload = excluded.payload,
	run_payload = excluded.run_payload, attempts = excluded.attempts, max_attempts = excluded.max_attempts,
	error = excluded.error, history = excluded.history, queued_at_ms = excluded.queued_at_ms,
	failed_at_ms = excluded.failed_at_ms, callback = excluded.callback`

// putFailed writes f into the failed list: replacing a row of the same job,
// or, when replace is false, only if there is none. It returns the rows
// written.
func putFailed(ctx context.Context, tx *sql.Tx, m *Masker, f FailedJob, replace bool) (int64, error) {
	hist, err := json.Marshal(orEmpty(f.History))
	if err != nil {
		return 0, err
	}
	conflict := `DO NOTHING`
	if replace {
		conflict = conflictReplace
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO failed_jobs (`+failedColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) `+conflict,
		f.ID, f.Type, f.Queue, f.Entity, m.payload(f.RunPayload), f.RunPayload, f.Attempts, f.MaxAttempts,
		m.text(f.Error), string(hist), f.QueuedAt.UnixMilli(), f.FailedAt.UnixMilli(), f.Callback)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// Adopt writes the failed jobs the list does not hold yet, with the attempts
// the history has of them, and returns how many those were.
func Adopt(ctx context.Context, tx *sql.Tx, m *Masker, jobs []FailedJob) (int, error) {
	n := 0
	for _, f := range jobs {
		if len(f.History) == 0 {
			hist, err := attemptsOf(ctx, tx, f.ID)
			if err != nil {
				return 0, err
			}
			f.History = hist
		}
		k, err := putFailed(ctx, tx, m, f, false)
		if err != nil {
			return 0, err
		}
		n += int(k)
	}
	return n, nil
}

// FailedJobs lists the failed list, oldest failure first.
func FailedJobs(ctx context.Context, db *sql.DB, f FailedFilter) ([]FailedJob, error) {
	where, args := failedWhere(f)
	rows, err := db.QueryContext(ctx, `SELECT `+failedColumns+` FROM failed_jobs`+where+` ORDER BY failed_at_ms, id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return collectFailed(rows)
}

// GetFailed returns one job of the failed list, or ErrNotFound.
func GetFailed(ctx context.Context, db *sql.DB, id string) (*FailedJob, error) {
	j, err := scanFailed(db.QueryRowContext(ctx, `SELECT `+failedColumns+` FROM failed_jobs WHERE id = ?`, id).Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return &j, nil
}

// removeChunk is how many jobs one statement removes or updates: SQLite
// allows 32,766 parameters.
const removeChunk = 1000

// Remove takes jobs off the failed list — each only as it was read (its
// failed_at): a job that failed again meanwhile (retried, and failed before
// the retry took it off) stays, as the new failure it is. requeued marks
// the removed ones queued again.
func Remove(ctx context.Context, tx *sql.Tx, jobs []FailedJob, requeued bool) error {
	for len(jobs) > 0 {
		chunk := jobs[:min(len(jobs), removeChunk)]
		jobs = jobs[len(chunk):]
		args := make([]any, 0, 2*len(chunk))
		for _, f := range chunk {
			args = append(args, f.ID, f.FailedAt.UnixMilli())
		}
		rows, err := tx.QueryContext(ctx, `DELETE FROM failed_jobs WHERE (id = ? AND failed_at_ms = ?)`+
			strings.Repeat(` OR (id = ? AND failed_at_ms = ?)`, len(chunk)-1)+` RETURNING id`, args...)
		if err != nil {
			return err
		}
		var gone []any
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			gone = append(gone, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if requeued && len(gone) > 0 {
			q := `UPDATE history_jobs SET state = 'pending' WHERE id IN (?` + strings.Repeat(",?", len(gone)-1) + `)`
			if _, err := tx.ExecContext(ctx, q, gone...); err != nil {
				return err
			}
		}
	}
	return nil
}

// Timeline returns every job kept for entity, oldest first.
func Timeline(ctx context.Context, db *sql.DB, entity string) ([]TimelineJob, error) {
	rows, err := db.QueryContext(ctx, timelineSQL("?"), entity)
	if err != nil {
		return nil, fmt.Errorf("timeline: %w", err)
	}
	defer rows.Close()
	return scanTimeline(rows.Next, rows.Scan, rows.Err)
}

// timelineSQL reads an entity's jobs with their failed attempts and when an
// attempt completed them; param is the placeholder of the entity.
func timelineSQL(param string) string {
	return `SELECT j.id, j.type, j.queue, j.state, j.queued_at_ms, j.done_at_ms, a.at_ms, a.error
		FROM history_jobs j LEFT JOIN history_attempts a ON a.job_id = j.id
		WHERE j.entity = ` + param + ` ORDER BY j.queued_at_ms, j.id, a.seq`
}

// JobEntity returns the entity job id was queued for, or ErrNotFound.
func JobEntity(ctx context.Context, db *sql.DB, id string) (string, error) {
	var entity string
	err := db.QueryRowContext(ctx, `SELECT entity FROM history_jobs WHERE id = ?`, id).Scan(&entity)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	return entity, err
}

// pruneSQL delete the history (not the failed list) older than a cut-off.
var pruneSQL = []string{`DELETE FROM history_attempts WHERE at_ms < ?`, `DELETE FROM history_jobs WHERE queued_at_ms < ?`}

// Prune deletes the history older than before and returns the rows deleted.
func Prune(ctx context.Context, tx *sql.Tx, before time.Time) (int64, error) {
	var n int64
	for _, q := range pruneSQL {
		res, err := tx.ExecContext(ctx, q, before.UnixMilli())
		if err != nil {
			return n, err
		}
		k, _ := res.RowsAffected()
		n += k
	}
	return n, nil
}
