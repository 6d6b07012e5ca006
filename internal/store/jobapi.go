package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/errandhq/errand/internal/queue"
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
func (s *Store) LookupIdempotent(ctx context.Context, tokenHash, key string) (*Stored, error) {
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
	Envelope      queue.Envelope
	CallbackURL   string
	CallbackToken string
	// Idempotency, when Key is set, keeps the answer for the key.
	TokenHash, Key, BodyHash string
	Status                   int
	Response                 string
}

// SaveAPIJob queues the job (outbox), its callback and the answer for its
// Idempotency-Key in one transaction. When the key was taken meanwhile by a
// concurrent request it returns ErrDuplicate and changes nothing.
func (s *Store) SaveAPIJob(ctx context.Context, j APIJob) error {
	now := time.Now().UnixMilli()
	return s.tx(ctx, func(tx *sql.Tx) error {
		if j.Key != "" {
			// An expired answer makes room for the new one.
			if _, err := tx.ExecContext(ctx, `DELETE FROM idempotency WHERE token_hash = ? AND key = ? AND created_at <= ?`,
				j.TokenHash, j.Key, time.Now().Add(-IdempotencyWindow).UnixMilli()); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx,
				`INSERT INTO idempotency (token_hash, key, body_hash, status, response, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
				j.TokenHash, j.Key, j.BodyHash, j.Status, j.Response, now); err != nil {
				if isUnique(err) {
					return ErrDuplicate
				}
				return fmt.Errorf("store: idempotency: %w", err)
			}
		}
		if j.CallbackURL != "" {
			if _, err := tx.ExecContext(ctx, `INSERT INTO job_callbacks (job_id, url, token, created_at) VALUES (?, ?, ?, ?)`,
				j.Envelope.ID, j.CallbackURL, j.CallbackToken, now); err != nil {
				return fmt.Errorf("store: callback: %w", err)
			}
		}
		return insertJobs(ctx, tx, []queue.Envelope{j.Envelope})
	})
}

// Callback returns where to report job id's outcome.
func (s *Store) Callback(ctx context.Context, jobID string) (url, token string, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT url, token FROM job_callbacks WHERE job_id = ?`, jobID).Scan(&url, &token)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", ErrNotFound
	}
	return url, token, err
}

// OutboxJob returns a job still waiting in the outbox (not yet in Redis).
func (s *Store) OutboxJob(ctx context.Context, id string) (*queue.Envelope, error) {
	var e queue.Envelope
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
