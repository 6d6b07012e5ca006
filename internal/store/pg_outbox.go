package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/store/historysql"
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

// pgSavers is how many group commits run at once. SQLite has one writer;
// PostgreSQL takes several, and while one batch waits for its commit to
// reach the disk the next is written, its flush merged with the first's.
// More is not faster: each saver is a backend competing for the same CPUs,
// and a waiting batch only grows (bench, web-jobs on a 2-core machine:
// 1 → 6,323 req/s, 2 → 5,445–5,782, 4 → 4,696–4,924, 8 → 4,172). Two keep
// one commit in flight while the next batch is written, for a server whose
// commit waits on a network or a disk rather than on CPU.
const pgSavers = 2

// SaveAPIJob writes concurrent calls together, as SQLite's does: one
// transaction of a few round trips for a whole batch.
func (s *pgStore) SaveAPIJob(ctx context.Context, j APIJob) error {
	s.saverOnce.Do(func() {
		for range pgSavers {
			go groupCommit(s.saves, s.closed, s.saveBatch)
		}
	})
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

// saveBatch writes a batch in one round trip: one pipeline, which
// PostgreSQL runs as one transaction. A job with an Idempotency-Key is one
// statement whose inserts of the job's rows are conditional on the key's
// INSERT … ON CONFLICT having written it (an answer past the window makes
// room for the new one); the count it returns says whether it did.
func (s *pgStore) saveBatch(batch []*saveReq) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Keys in one order in every batch: two batches holding the same two
	// keys cannot wait for each other. Concurrent requests have no order
	// of their own to keep.
	sort.SliceStable(batch, func(i, j int) bool {
		a, b := batch[i].job, batch[j].job
		if (a.Key != "") != (b.Key != "") {
			return a.Key != ""
		}
		return a.Key != "" && (a.TokenHash < b.TokenHash || a.TokenHash == b.TokenHash && a.Key < b.Key)
	})
	now := time.Now()
	expired := now.Add(-IdempotencyWindow).UnixMilli()
	b := &pgx.Batch{}
	written := make([]*int, len(batch))
	for i, r := range batch {
		j, e := r.job, r.job.Envelope
		if j.Key == "" {
			b.Queue(`INSERT INTO api_jobs (job_id, token_hash, created_at) VALUES ($1, $2, $3)`, e.ID, j.TokenHash, now.UnixMilli())
			if j.CallbackURL != "" {
				b.Queue(`INSERT INTO job_callbacks (job_id, url, token, created_at) VALUES ($1, $2, $3, $4)`, e.ID, j.CallbackURL, j.CallbackToken, now.UnixMilli())
			}
			b.Queue(pgInsertJobSQL, e.ID, e.Type, e.Queue, e.Payload, e.DueAt.UnixMilli(), e.QueuedAt.UnixMilli(), e.Callback)
			s.queueQueued(b, e)
			continue
		}
		n := new(int)
		written[i] = n
		hEntity, hPayload, hState := historysql.PGQueuedArgs(&s.shown, e)
		b.Queue(`WITH k AS (
				INSERT INTO idempotency (token_hash, key, body_hash, status, response, created_at)
				VALUES ($1, $2, $3, $4, $5, $6)
				ON CONFLICT (token_hash, key) DO UPDATE SET body_hash = excluded.body_hash, status = excluded.status,
					response = excluded.response, created_at = excluded.created_at
				WHERE idempotency.created_at <= $7
				RETURNING 1),
			owner AS (INSERT INTO api_jobs (job_id, token_hash, created_at) SELECT $8, $1, $6 FROM k RETURNING 1),
			callback AS (INSERT INTO job_callbacks (job_id, url, token, created_at) SELECT $8, $9, $10, $6 FROM k WHERE $9 <> '' RETURNING 1),
			job AS (INSERT INTO outbox (id, type, queue, payload, due_at_ms, queued_at_ms, callback)
				SELECT $8, $11, $12, $13::bytea, $14::bigint, $15::bigint, $16::boolean FROM k RETURNING 1),
			hist AS (INSERT INTO history_jobs (id, entity, type, queue, state, queued_at_ms, payload)
				SELECT $8, $17, $11, $12, $19, $15::bigint, $18 FROM k RETURNING 1)
			SELECT count(*)::int FROM k`,
			j.TokenHash, j.Key, j.BodyHash, j.Status, j.Response, now.UnixMilli(), expired,
			e.ID, j.CallbackURL, j.CallbackToken, e.Type, e.Queue, e.Payload, e.DueAt.UnixMilli(), e.QueuedAt.UnixMilli(), e.Callback,
			hEntity, hPayload, hState).
			QueryRow(func(row pgx.Row) error { return row.Scan(n) })
	}
	b.Queue(`SELECT pg_notify($1, '')`, outboxChannel)
	err := s.pool.SendBatch(ctx, b).Close()
	if err != nil {
		err = fmt.Errorf("store: save API jobs: %w", err)
	}
	for i, r := range batch {
		switch {
		case err != nil:
			r.done <- err
		case written[i] != nil && *written[i] == 0:
			r.done <- ErrDuplicate
		default:
			r.done <- nil
		}
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
