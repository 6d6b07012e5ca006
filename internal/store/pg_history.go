package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/redact"
	"github.com/jackc/pgx/v5"
)

// PostgreSQL's history: the same methods as SQLite's (history.go).

func (s *pgStore) MaskPayloads(r *redact.Redactor) { s.shown.r.Store(r) }

const pgQueuedSQL = `INSERT INTO history_jobs (id, entity, type, queue, state, queued_at_ms, payload)
	VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO UPDATE SET state = excluded.state`

// queueQueued adds e's "queued" to b.
func (s *pgStore) queueQueued(b *pgx.Batch, e job.Envelope) {
	b.Queue(pgQueuedSQL, e.ID, e.Entity, e.Type, e.Queue, queuedState(e), e.QueuedAt.UnixMilli(), s.shown.payload(e.Payload))
}

func (s *pgStore) RecordQueued(ctx context.Context, jobs []job.Envelope) error {
	if len(jobs) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for _, e := range jobs {
		s.queueQueued(b, e)
	}
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("store: record queued: %w", err)
	}
	return nil
}

// RecordOutcomes writes a batch in one transaction of two round trips: the
// attempts and states, then each failed job with its attempts read back.
func (s *pgStore) RecordOutcomes(ctx context.Context, attempts []Attempt, failed []FailedJob) error {
	err := s.tx(ctx, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, a := range attempts {
			b.Queue(`INSERT INTO history_attempts (job_id, number, at_ms, outcome, error) VALUES ($1, $2, $3, $4, $5)`,
				a.JobID, a.Number, a.At.UnixMilli(), a.Outcome, s.shown.text(a.Error))
			b.Queue(`UPDATE history_jobs SET state = $1 WHERE id = $2`, stateAfter(a.Outcome), a.JobID)
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		for _, f := range failed {
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

// putFailed writes f into the failed list (see sqliteStore.putFailed); an
// empty History is read from the job's attempts in the same statement.
func (s *pgStore) putFailed(ctx context.Context, tx pgx.Tx, f FailedJob, replace bool) (int64, error) {
	var hist []byte
	if len(f.History) > 0 {
		var err error
		if hist, err = json.Marshal(f.History); err != nil {
			return 0, err
		}
	}
	conflict := `DO NOTHING`
	if replace {
		conflict = `DO UPDATE SET type = excluded.type, queue = excluded.queue, entity = excluded.entity, payload = excluded.payload,
			run_payload = excluded.run_payload, attempts = excluded.attempts, max_attempts = excluded.max_attempts,
			error = excluded.error, history = excluded.history, queued_at_ms = excluded.queued_at_ms,
			failed_at_ms = excluded.failed_at_ms, callback = excluded.callback`
	}
	tag, err := tx.Exec(ctx, `INSERT INTO failed_jobs (id, type, queue, entity, payload, run_payload, attempts, max_attempts,
		error, history, queued_at_ms, failed_at_ms, callback)
		SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9,
			COALESCE($10::text, (SELECT COALESCE(json_agg(json_build_object('at', to_char(to_timestamp(at_ms / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), 'error', error) ORDER BY seq), '[]')::text
				FROM history_attempts WHERE job_id = $1)),
			$11, $12, $13
		ON CONFLICT (id) `+conflict,
		f.ID, f.Type, f.Queue, f.Entity, s.shown.payload(f.RunPayload), f.RunPayload, f.Attempts, f.MaxAttempts,
		s.shown.text(f.Error), nullText(hist), f.QueuedAt.UnixMilli(), f.FailedAt.UnixMilli(), f.Callback)
	return tag.RowsAffected(), err
}

func nullText(b []byte) *string {
	if b == nil {
		return nil
	}
	s := string(b)
	return &s
}

func (s *pgStore) AdoptFailed(ctx context.Context, jobs []FailedJob) (int, error) {
	var n int64
	err := s.tx(ctx, func(tx pgx.Tx) error {
		n = 0
		for _, f := range jobs {
			k, err := s.putFailed(ctx, tx, f, false)
			if err != nil {
				return err
			}
			n += k
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: adopt failed jobs: %w", err)
	}
	return int(n), nil
}

// pgFailedWhere is f as a WHERE clause with $n placeholders.
func pgFailedWhere(f FailedFilter) (string, []any) {
	where, args := failedWhere(f)
	for i := range args {
		where = strings.Replace(where, "?", "$"+strconv.Itoa(i+1), 1)
	}
	return where, args
}

func (s *pgStore) FailedJobs(ctx context.Context, f FailedFilter) ([]FailedJob, error) {
	where, args := pgFailedWhere(f)
	rows, err := s.pool.Query(ctx, `SELECT `+failedColumns+` FROM failed_jobs`+where+` ORDER BY failed_at_ms, id`, args...)
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

func (s *pgStore) FailedJob(ctx context.Context, id string) (*FailedJob, error) {
	j, err := scanFailed(s.pool.QueryRow(ctx, `SELECT `+failedColumns+` FROM failed_jobs WHERE id = $1`, id).Scan)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: failed job: %w", err)
	}
	return &j, nil
}

func (s *pgStore) RemoveFailed(ctx context.Context, ids []string, requeued bool) error {
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM failed_jobs WHERE id = ANY($1)`, ids); err != nil {
			return err
		}
		if requeued {
			if _, err := tx.Exec(ctx, `UPDATE history_jobs SET state = 'pending' WHERE id = ANY($1)`, ids); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: remove from the failed list: %w", err)
	}
	return nil
}

func (s *pgStore) Timeline(ctx context.Context, entity string) ([]TimelineJob, error) {
	rows, err := s.pool.Query(ctx, `SELECT j.id, j.type, j.queue, j.state, j.queued_at_ms, a.at_ms, a.error
		FROM history_jobs j LEFT JOIN history_attempts a ON a.job_id = j.id
		WHERE j.entity = $1 ORDER BY j.queued_at_ms, j.id, a.seq`, entity)
	if err != nil {
		return nil, fmt.Errorf("store: timeline: %w", err)
	}
	defer rows.Close()
	return scanTimeline(rows.Next, rows.Scan, rows.Err)
}

func (s *pgStore) JobEntity(ctx context.Context, id string) (string, error) {
	var entity string
	err := s.pool.QueryRow(ctx, `SELECT entity FROM history_jobs WHERE id = $1`, id).Scan(&entity)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("store: job entity: %w", err)
	}
	return entity, nil
}

func (s *pgStore) PruneHistory(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	for _, q := range []string{`DELETE FROM history_attempts WHERE at_ms < $1`, `DELETE FROM history_jobs WHERE queued_at_ms < $1`} {
		tag, err := s.pool.Exec(ctx, q, before.UnixMilli())
		if err != nil {
			return n, fmt.Errorf("store: prune history: %w", err)
		}
		n += tag.RowsAffected()
	}
	return n, nil
}
