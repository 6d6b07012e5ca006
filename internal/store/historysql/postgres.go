package historysql

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/errandhq/errand/internal/job"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PostgreSQL's statements: the same as SQLite's (sqlite.go), with $n
// placeholders, batches, and a failed job's attempts read in the statement
// that writes it.

const pgQueuedSQL = `INSERT INTO history_jobs (id, entity, type, queue, state, queued_at_ms, payload)
	VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO UPDATE SET state = excluded.state`

// PGQueue adds e's "queued" to b.
func PGQueue(b *pgx.Batch, m *Masker, e job.Envelope) {
	b.Queue(pgQueuedSQL, e.ID, e.Entity, e.Type, e.Queue, queuedState(e), e.QueuedAt.UnixMilli(), m.payload(e.Payload))
}

// PGQueuedArgs are what a statement that writes e's "queued" itself (the
// store's Idempotency-Key insert) needs beside the outbox's: the entity, the
// masked payload and the state.
func PGQueuedArgs(m *Masker, e job.Envelope) (entity, payload, state string) {
	return e.Entity, m.payload(e.Payload), queuedState(e)
}

// PGRecordOutcomes writes attempts and final failures within tx: the
// attempts and each job's last state as arrays, in one round trip, then each
// failed job.
func PGRecordOutcomes(ctx context.Context, tx pgx.Tx, m *Masker, attempts []Attempt, failed []FailedJob) error {
	failures, done := splitDone(attempts)
	n := len(failures)
	ids, numbers, ats, outcomes, errs := make([]string, n), make([]int32, n), make([]int64, n), make([]string, n), make([]string, n)
	for i, a := range failures {
		ids[i], numbers[i], ats[i], outcomes[i], errs[i] = a.JobID, int32(a.Number), a.At.UnixMilli(), a.Outcome, m.text(a.Error)
	}
	dids, dats := make([]string, len(done)), make([]int64, len(done))
	for i, a := range done {
		dids[i], dats[i] = a.JobID, a.At.UnixMilli()
	}
	var sids, states []string
	for _, g := range lastStates(failures) {
		for _, id := range g.ids {
			sids, states = append(sids, id), append(states, g.state)
		}
	}
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO history_attempts (job_id, number, at_ms, outcome, error)
		SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[], $4::text[], $5::text[])`, ids, numbers, ats, outcomes, errs)
	b.Queue(`UPDATE history_jobs h SET state = u.state FROM unnest($1::text[], $2::text[]) AS u(id, state) WHERE h.id = u.id`, sids, states)
	// Last: a job that failed and then completed in one batch is completed.
	b.Queue(`UPDATE history_jobs h SET state = 'completed', done_at_ms = d.at FROM unnest($1::text[], $2::bigint[]) AS d(id, at) WHERE h.id = d.id`, dids, dats)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	for _, f := range failed {
		f.History = nil // read back from the attempts
		if _, err := pgPutFailed(ctx, tx, m, f, true); err != nil {
			return err
		}
	}
	return nil
}

// pgPutFailed writes f into the failed list (see putFailed); an empty
// History is read from the job's attempts in the same statement.
func pgPutFailed(ctx context.Context, tx pgx.Tx, m *Masker, f FailedJob, replace bool) (int64, error) {
	var hist *string
	if len(f.History) > 0 {
		b, err := json.Marshal(f.History)
		if err != nil {
			return 0, err
		}
		s := string(b)
		hist = &s
	}
	conflict := `DO NOTHING`
	if replace {
		conflict = conflictReplace
	}
	tag, err := tx.Exec(ctx, `INSERT INTO failed_jobs (`+failedColumns+`)
		SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9,
			COALESCE($10::text, (SELECT COALESCE(json_agg(json_build_object(
				'at', to_char(to_timestamp(at_ms / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
				'error', error) ORDER BY seq), '[]')::text
				FROM history_attempts WHERE job_id = $1)),
			$11, $12, $13
		ON CONFLICT (id) `+conflict,
		f.ID, f.Type, f.Queue, f.Entity, m.payload(f.RunPayload), f.RunPayload, f.Attempts, f.MaxAttempts,
		m.text(f.Error), hist, f.QueuedAt.UnixMilli(), f.FailedAt.UnixMilli(), f.Callback)
	return tag.RowsAffected(), err
}

// PGAdopt writes the failed jobs the list does not hold yet and returns how
// many those were.
func PGAdopt(ctx context.Context, tx pgx.Tx, m *Masker, jobs []FailedJob) (int, error) {
	var n int64
	for _, f := range jobs {
		k, err := pgPutFailed(ctx, tx, m, f, false)
		if err != nil {
			return 0, err
		}
		n += k
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

// PGFailedJobs lists the failed list, oldest failure first.
func PGFailedJobs(ctx context.Context, pool *pgxpool.Pool, f FailedFilter) ([]FailedJob, error) {
	where, args := pgFailedWhere(f)
	rows, err := pool.Query(ctx, `SELECT `+failedColumns+` FROM failed_jobs`+where+` ORDER BY failed_at_ms, id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return collectFailed(rows)
}

// PGGetFailed returns one job of the failed list, or ErrNotFound.
func PGGetFailed(ctx context.Context, pool *pgxpool.Pool, id string) (*FailedJob, error) {
	j, err := scanFailed(pool.QueryRow(ctx, `SELECT `+failedColumns+` FROM failed_jobs WHERE id = $1`, id).Scan)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return &j, nil
}

// PGRemove takes jobs off the failed list, each only as it was read (see
// Remove); requeued marks the removed ones queued again.
func PGRemove(ctx context.Context, tx pgx.Tx, jobs []FailedJob, requeued bool) error {
	ids, at := make([]string, len(jobs)), make([]int64, len(jobs))
	for i, f := range jobs {
		ids[i], at[i] = f.ID, f.FailedAt.UnixMilli()
	}
	state := `SELECT 1`
	if requeued {
		state = `UPDATE history_jobs SET state = 'pending' WHERE id IN (SELECT id FROM gone)`
	}
	_, err := tx.Exec(ctx, `WITH gone AS (
			DELETE FROM failed_jobs f USING unnest($1::text[], $2::bigint[]) AS r(id, at)
			WHERE f.id = r.id AND f.failed_at_ms = r.at RETURNING f.id)
		`+state, ids, at)
	return err
}

// PGTimeline returns every job kept for entity, oldest first.
func PGTimeline(ctx context.Context, pool *pgxpool.Pool, entity string) ([]TimelineJob, error) {
	rows, err := pool.Query(ctx, timelineSQL("$1"), entity)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return scanTimeline(rows.Next, rows.Scan, rows.Err)
}

// PGJobEntity returns the entity job id was queued for, or ErrNotFound.
func PGJobEntity(ctx context.Context, pool *pgxpool.Pool, id string) (string, error) {
	var entity string
	err := pool.QueryRow(ctx, `SELECT entity FROM history_jobs WHERE id = $1`, id).Scan(&entity)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrNotFound
	}
	return entity, err
}

// PGPrune deletes the history older than before and returns the rows
// deleted.
func PGPrune(ctx context.Context, pool *pgxpool.Pool, before time.Time) (int64, error) {
	var n int64
	for _, q := range pruneSQL {
		tag, err := pool.Exec(ctx, strings.Replace(q, "?", "$1", 1), before.UnixMilli())
		if err != nil {
			return n, err
		}
		n += tag.RowsAffected()
	}
	return n, nil
}
