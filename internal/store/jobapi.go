package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/errandhq/errand/internal/job"
)

// IdempotencyWindow is how long an Idempotency-Key's answer is kept.
const IdempotencyWindow = 24 * time.Hour

// Stored is an answer kept for an Idempotency-Key.
type Stored struct {
	BodyHash string
	Status   int
	Response string
}

// ErrKeyReused is returned when an Idempotency-Key was used with another
// body.
var ErrKeyReused = errors.New("idempotency key already used with a different body")

// LookupIdempotent returns the answer kept for key, or nil.
func (s *sqliteStore) LookupIdempotent(ctx context.Context, tokenHash, key string) (*Stored, error) {
	var st Stored
	err := s.db.QueryRowContext(ctx,
		`SELECT body_hash, status, response FROM idempotency WHERE token_hash = ? AND key = ? AND created_at > ?`,
		tokenHash, key, time.Now().Add(-IdempotencyWindow).UnixMilli()).Scan(&st.BodyHash, &st.Status, &st.Response)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: idempotency: %w", err)
	}
	return &st, nil
}

// APIJob is a job accepted by POST /api/jobs.
type APIJob struct {
	Envelope      job.Envelope
	CallbackURL   string
	CallbackToken string
	// TokenHash names the token that queued the job: the only one that may
	// read its status (JobOwner).
	TokenHash string
	// Idempotency, when Key is set, keeps the answer for the key.
	Key, BodyHash string
	Status        int
	Response      string
}

// SaveAPIJob queues the job (outbox), its callback and the answer for its
// Idempotency-Key in one transaction. When the key was taken meanwhile by a
// concurrent request it returns ErrDuplicate and changes nothing.
//
// Concurrent calls are written together, in one transaction (a group
// commit): one request alone costs one transaction, sixteen at once cost
// one too. Each job is its own savepoint in it, so one refused (a taken
// Idempotency-Key) leaves the others be. Once handed over, a job is waited
// for even if ctx ends, so that the answer tells what happened to it.
func (s *sqliteStore) SaveAPIJob(ctx context.Context, j APIJob) error {
	s.saverOnce.Do(func() { go s.saver() })
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

var errClosed = errors.New("store: closed")

type saveReq struct {
	job  APIJob
	done chan error
}

// maxSaveBatch bounds one group commit.
const maxSaveBatch = 128

func (s *sqliteStore) saver() { groupCommit(s.saves, s.closed, s.saveBatch) }

// groupCommit hands save every request waiting on saves, up to
// maxSaveBatch at a time, until closed.
func groupCommit(saves <-chan *saveReq, closed <-chan struct{}, save func([]*saveReq)) {
	for {
		var first *saveReq
		select {
		case first = <-saves:
		case <-closed:
			return
		}
		batch := []*saveReq{first}
	more:
		for len(batch) < maxSaveBatch {
			select {
			case r := <-saves:
				batch = append(batch, r)
			default:
				break more
			}
		}
		save(batch)
	}
}

func (s *sqliteStore) saveBatch(batch []*saveReq) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errs := make([]error, len(batch))
	err := s.tx(ctx, func(tx *sql.Tx) error {
		// An answer kept past the idempotency window makes room for the new
		// one; a live one means the key is taken (no row written).
		keep, err := tx.PrepareContext(ctx, `INSERT INTO idempotency (token_hash, key, body_hash, status, response, created_at)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (token_hash, key) DO UPDATE SET body_hash = excluded.body_hash, status = excluded.status,
				response = excluded.response, created_at = excluded.created_at
			WHERE idempotency.created_at <= ?`)
		if err != nil {
			return err
		}
		defer keep.Close()
		outbox, err := tx.PrepareContext(ctx, insertJobSQL)
		if err != nil {
			return err
		}
		defer outbox.Close()
		now := time.Now()
		expired := now.Add(-IdempotencyWindow).UnixMilli()
		for i, r := range batch {
			j := r.job
			if j.Key != "" {
				res, err := keep.ExecContext(ctx, j.TokenHash, j.Key, j.BodyHash, j.Status, j.Response, now.UnixMilli(), expired)
				if err != nil {
					return fmt.Errorf("store: idempotency: %w", err)
				}
				if n, _ := res.RowsAffected(); n == 0 {
					errs[i] = ErrDuplicate
					continue
				}
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO api_jobs (job_id, token_hash, created_at) VALUES (?, ?, ?)`,
				j.Envelope.ID, j.TokenHash, now.UnixMilli()); err != nil {
				return fmt.Errorf("store: job owner: %w", err)
			}
			if j.CallbackURL != "" {
				if _, err := tx.ExecContext(ctx, `INSERT INTO job_callbacks (job_id, url, token, created_at) VALUES (?, ?, ?, ?)`,
					j.Envelope.ID, j.CallbackURL, j.CallbackToken, now.UnixMilli()); err != nil {
					return fmt.Errorf("store: callback: %w", err)
				}
			}
			e := j.Envelope
			if _, err := outbox.ExecContext(ctx, e.ID, e.Type, e.Queue, e.Payload, e.DueAt.UnixMilli(), e.QueuedAt.UnixMilli(), e.Callback); err != nil {
				return fmt.Errorf("outbox: %w", err)
			}
			if err := s.queued(ctx, tx, e); err != nil {
				return err
			}
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

// Callback returns where to report job id's outcome.
func (s *sqliteStore) Callback(ctx context.Context, jobID string) (url, token string, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT url, token FROM job_callbacks WHERE job_id = ?`, jobID).Scan(&url, &token)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", ErrNotFound
	}
	return url, token, err
}

// JobOwner returns the token hash that queued job id through the API, or
// ErrNotFound for a job errand queued itself (or an unknown id).
func (s *sqliteStore) JobOwner(ctx context.Context, jobID string) (string, error) {
	var owner string
	err := s.db.QueryRowContext(ctx, `SELECT token_hash FROM api_jobs WHERE job_id = ?`, jobID).Scan(&owner)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("store: job owner: %w", err)
	}
	return owner, nil
}

// OutboxJob returns a job still waiting in the outbox (not yet in Redis).
func (s *sqliteStore) OutboxJob(ctx context.Context, id string) (*job.Envelope, error) {
	var e job.Envelope
	var due, queued int64
	err := s.db.QueryRowContext(ctx, `SELECT id, type, queue, payload, due_at_ms, queued_at_ms FROM outbox WHERE id = ?`, id).
		Scan(&e.ID, &e.Type, &e.Queue, &e.Payload, &due, &queued)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: outbox job: %w", err)
	}
	e.DueAt, e.QueuedAt = time.UnixMilli(due), time.UnixMilli(queued)
	return &e, nil
}
