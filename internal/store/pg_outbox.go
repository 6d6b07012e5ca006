package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/errandhq/errand/internal/job"
	"github.com/jackc/pgx/v5"
)

// PostgreSQL's POST /api/jobs and outbox: the same methods as SQLite's
// (jobapi.go, outbox.go).

func (s *pgStore) LookupIdempotent(ctx context.Context, tokenHash, key string) (*Stored, error) {
	var st Stored
	err := s.pool.QueryRow(ctx,
		`SELECT body_hash, status, response FROM idempotency WHERE token_hash = $1 AND key = $2 AND created_at > $3`,
		tokenHash, key, time.Now().Add(-IdempotencyWindow).UnixMilli()).Scan(&st.BodyHash, &st.Status, &st.Response)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: idempotency: %w", err)
	}
	return &st, nil
}

// SaveAPIJob writes concurrent calls together, as SQLite's does: one
// transaction of a few round trips for a whole batch.
func (s *pgStore) SaveAPIJob(ctx context.Context, j APIJob) error {
	s.saverOnce.Do(func() { go groupCommit(s.saves, s.closed, s.saveBatch) })
	r := &saveReq{job: j, done: make(chan error, 1)}
	select {
	case s.saves <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closed:
		return errClosed
	}
	return <-r.done
}

// saveBatch keeps the Idempotency-Keys first, in one round trip, each an
// INSERT … ON CONFLICT whose count says whether the key was free (an answer
// past the window makes room for the new one); then the accepted jobs'
// rows, in a second.
func (s *pgStore) saveBatch(batch []*saveReq) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errs := make([]error, len(batch))
	now := time.Now()
	expired := now.Add(-IdempotencyWindow).UnixMilli()
	err := s.tx(ctx, func(tx pgx.Tx) error {
		keys := &pgx.Batch{}
		var keyed []int
		for i, r := range batch {
			if j := r.job; j.Key != "" {
				keys.Queue(`INSERT INTO idempotency (token_hash, key, body_hash, status, response, created_at)
					VALUES ($1, $2, $3, $4, $5, $6)
					ON CONFLICT (token_hash, key) DO UPDATE SET body_hash = excluded.body_hash, status = excluded.status,
						response = excluded.response, created_at = excluded.created_at
					WHERE idempotency.created_at <= $7`,
					j.TokenHash, j.Key, j.BodyHash, j.Status, j.Response, now.UnixMilli(), expired)
				keyed = append(keyed, i)
			}
		}
		if len(keyed) > 0 {
			br := tx.SendBatch(ctx, keys)
			for _, i := range keyed {
				tag, err := br.Exec()
				if err != nil {
					_ = br.Close()
					return fmt.Errorf("store: idempotency: %w", err)
				}
				if tag.RowsAffected() == 0 {
					errs[i] = ErrDuplicate
				}
			}
			if err := br.Close(); err != nil {
				return fmt.Errorf("store: idempotency: %w", err)
			}
		}
		rows := &pgx.Batch{}
		var accepted []job.Envelope
		for i, r := range batch {
			if errs[i] != nil {
				continue
			}
			j := r.job
			rows.Queue(`INSERT INTO api_jobs (job_id, token_hash, created_at) VALUES ($1, $2, $3)`, j.Envelope.ID, j.TokenHash, now.UnixMilli())
			if j.CallbackURL != "" {
				rows.Queue(`INSERT INTO job_callbacks (job_id, url, token, created_at) VALUES ($1, $2, $3, $4)`,
					j.Envelope.ID, j.CallbackURL, j.CallbackToken, now.UnixMilli())
			}
			accepted = append(accepted, j.Envelope)
		}
		if len(accepted) == 0 {
			return nil
		}
		queueJobs(rows, accepted)
		if err := tx.SendBatch(ctx, rows).Close(); err != nil {
			return fmt.Errorf("store: save API jobs: %w", err)
		}
		return nil
	})
	for i, r := range batch {
		if err != nil {
			errs[i] = err
		}
		r.done <- errs[i]
	}
}

func (s *pgStore) Callback(ctx context.Context, jobID string) (url, token string, err error) {
	err = s.pool.QueryRow(ctx, `SELECT url, token FROM job_callbacks WHERE job_id = $1`, jobID).Scan(&url, &token)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", ErrNotFound
	}
	return url, token, err
}

func (s *pgStore) JobOwner(ctx context.Context, jobID string) (string, error) {
	var owner string
	err := s.pool.QueryRow(ctx, `SELECT token_hash FROM api_jobs WHERE job_id = $1`, jobID).Scan(&owner)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("store: job owner: %w", err)
	}
	return owner, nil
}

func (s *pgStore) OutboxJob(ctx context.Context, id string) (*job.Envelope, error) {
	var e job.Envelope
	var due, queued int64
	err := s.pool.QueryRow(ctx, `SELECT id, type, queue, payload, due_at_ms, queued_at_ms FROM outbox WHERE id = $1`, id).
		Scan(&e.ID, &e.Type, &e.Queue, &e.Payload, &due, &queued)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: outbox job: %w", err)
	}
	e.DueAt, e.QueuedAt = time.UnixMilli(due), time.UnixMilli(queued)
	return &e, nil
}

// ClaimOutbox takes the oldest free rows with FOR UPDATE SKIP LOCKED: relays
// in several processes claim at once without waiting for each other or
// taking a row twice, and the lease (on the database's clock) brings back
// the rows of a relay that died before deleting them.
func (s *pgStore) ClaimOutbox(ctx context.Context, lease time.Duration, limit int) ([]job.Envelope, error) {
	rows, err := s.pool.Query(ctx, `
		WITH free AS (
			SELECT seq FROM outbox WHERE claimed_until < `+nowMS+`
			ORDER BY seq LIMIT $2 FOR UPDATE SKIP LOCKED
		)
		UPDATE outbox o SET claimed_until = `+nowMS+` + $1, tries = o.tries + 1
		FROM free WHERE o.seq = free.seq
		RETURNING o.seq, o.id, o.type, o.queue, o.payload, o.due_at_ms, o.queued_at_ms, o.callback`,
		lease.Milliseconds(), limit)
	if err != nil {
		return nil, fmt.Errorf("store: claim outbox: %w", err)
	}
	var out []job.Envelope
	var seqs []int64
	for rows.Next() {
		var e job.Envelope
		var seq, due, queued int64
		if err := rows.Scan(&seq, &e.ID, &e.Type, &e.Queue, &e.Payload, &due, &queued, &e.Callback); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: claim outbox: %w", err)
		}
		e.DueAt, e.QueuedAt = time.UnixMilli(due), time.UnixMilli(queued)
		out = append(out, e)
		seqs = append(seqs, seq)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: claim outbox: %w", err)
	}
	// RETURNING gives no order: jobs go to Redis in the order they were
	// saved, which ordered job types (order_by) rely on.
	sort.Sort(bySeq{out, seqs})
	return out, nil
}

func (s *pgStore) DeleteOutbox(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM outbox WHERE id = ANY($1)`, ids); err != nil {
		return fmt.Errorf("store: delete outbox: %w", err)
	}
	return nil
}

func (s *pgStore) ReleaseOutbox(ctx context.Context, ids []string, reason string) error {
	if len(ids) == 0 {
		return nil
	}
	if _, err := s.pool.Exec(ctx, `UPDATE outbox SET claimed_until = 0, last_error = $1 WHERE id = ANY($2)`, reason, ids); err != nil {
		return fmt.Errorf("store: release outbox: %w", err)
	}
	return nil
}

func (s *pgStore) OutboxBacklog(ctx context.Context) (int, time.Time, error) {
	var n int
	var oldest *int64
	if err := s.pool.QueryRow(ctx, `SELECT count(*), min(queued_at_ms) FROM outbox`).Scan(&n, &oldest); err != nil {
		return 0, time.Time{}, fmt.Errorf("store: outbox backlog: %w", err)
	}
	if oldest == nil {
		return n, time.Time{}, nil
	}
	return n, time.UnixMilli(*oldest), nil
}
