package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/redact"
	"github.com/errandhq/errand/internal/store/historysql"
	"github.com/jackc/pgx/v5"
)

// History is what the database keeps of jobs beyond the outbox: every job
// queued with the entity it is for (written in the transaction that queues
// it), each attempt's outcome (written by the workers in batches), and the
// durable failed list. The SQL is internal/store/historysql's.
type History interface {
	// MaskPayloads sets the redactor of the payloads and errors the history
	// keeps (escalation.redact); until it is called, redact's own words.
	MaskPayloads(r *redact.Redactor)
	// RecordQueued writes the "queued" of jobs put into Redis without the
	// outbox (errand enqueue).
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
	// RemoveFailed takes jobs off the failed list, each only as it was read
	// (a job that failed again since stays); requeued marks them queued
	// again in their history.
	RemoveFailed(ctx context.Context, jobs []FailedJob, requeued bool) error
	// Timeline returns every job kept for entity, oldest first.
	Timeline(ctx context.Context, entity string) ([]TimelineJob, error)
	// JobEntity returns the entity job id was queued for ("" for none), or
	// ErrNotFound.
	JobEntity(ctx context.Context, id string) (string, error)
	// PruneHistory deletes the jobs queued and attempts made before before
	// (not the failed list) and returns how many rows it deleted.
	PruneHistory(ctx context.Context, before time.Time) (int64, error)
}

// The history's records, defined in historysql.
type (
	Attempt      = historysql.Attempt
	AttemptAt    = historysql.AttemptAt
	FailedJob    = historysql.FailedJob
	FailedFilter = historysql.FailedFilter
	TimelineJob  = historysql.TimelineJob
)

// An attempt's outcome, as the history records it.
const (
	OutcomeDone   = historysql.OutcomeDone
	OutcomeRetry  = historysql.OutcomeRetry
	OutcomeFailed = historysql.OutcomeFailed
)

// historyErr wraps err from the history's op, keeping ErrNotFound.
func historyErr(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, historysql.ErrNotFound):
		return ErrNotFound
	}
	return fmt.Errorf("store: %s: %w", op, err)
}

func (s *sqliteStore) MaskPayloads(r *redact.Redactor) { s.shown.Use(r) }

func (s *sqliteStore) queued(ctx context.Context, tx *sql.Tx, e job.Envelope) error {
	return historysql.Queued(ctx, tx, &s.shown, e)
}

func (s *sqliteStore) RecordQueued(ctx context.Context, jobs []job.Envelope) error {
	return historyErr("record queued", s.tx(ctx, func(tx *sql.Tx) error {
		for _, e := range jobs {
			if err := s.queued(ctx, tx, e); err != nil {
				return err
			}
		}
		return nil
	}))
}

func (s *sqliteStore) RecordOutcomes(ctx context.Context, attempts []Attempt, failed []FailedJob) error {
	return historyErr("record outcomes", s.tx(ctx, func(tx *sql.Tx) error {
		return historysql.RecordOutcomes(ctx, tx, &s.shown, attempts, failed)
	}))
}

func (s *sqliteStore) AdoptFailed(ctx context.Context, jobs []FailedJob) (n int, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error { n, err = historysql.Adopt(ctx, tx, &s.shown, jobs); return err })
	return n, historyErr("adopt failed jobs", err)
}

func (s *sqliteStore) FailedJobs(ctx context.Context, f FailedFilter) ([]FailedJob, error) {
	l, err := historysql.FailedJobs(ctx, s.db, f)
	return l, historyErr("failed list", err)
}

func (s *sqliteStore) FailedJob(ctx context.Context, id string) (*FailedJob, error) {
	j, err := historysql.GetFailed(ctx, s.db, id)
	return j, historyErr("failed job", err)
}

func (s *sqliteStore) RemoveFailed(ctx context.Context, jobs []FailedJob, requeued bool) error {
	return historyErr("remove from the failed list", s.tx(ctx, func(tx *sql.Tx) error {
		return historysql.Remove(ctx, tx, jobs, requeued)
	}))
}

func (s *sqliteStore) Timeline(ctx context.Context, entity string) ([]TimelineJob, error) {
	l, err := historysql.Timeline(ctx, s.db, entity)
	return l, historyErr("timeline", err)
}

func (s *sqliteStore) JobEntity(ctx context.Context, id string) (string, error) {
	e, err := historysql.JobEntity(ctx, s.db, id)
	return e, historyErr("job entity", err)
}

func (s *sqliteStore) PruneHistory(ctx context.Context, before time.Time) (n int64, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error { n, err = historysql.Prune(ctx, tx, before); return err })
	return n, historyErr("prune history", err)
}

// PostgreSQL's: the same, through historysql's PG functions.

func (s *pgStore) MaskPayloads(r *redact.Redactor) { s.shown.Use(r) }

func (s *pgStore) queueQueued(b *pgx.Batch, e job.Envelope) { historysql.PGQueue(b, &s.shown, e) }

func (s *pgStore) RecordQueued(ctx context.Context, jobs []job.Envelope) error {
	if len(jobs) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for _, e := range jobs {
		s.queueQueued(b, e)
	}
	return historyErr("record queued", s.pool.SendBatch(ctx, b).Close())
}

func (s *pgStore) RecordOutcomes(ctx context.Context, attempts []Attempt, failed []FailedJob) error {
	return historyErr("record outcomes", s.tx(ctx, func(tx pgx.Tx) error {
		return historysql.PGRecordOutcomes(ctx, tx, &s.shown, attempts, failed)
	}))
}

func (s *pgStore) AdoptFailed(ctx context.Context, jobs []FailedJob) (n int, err error) {
	err = s.tx(ctx, func(tx pgx.Tx) error { n, err = historysql.PGAdopt(ctx, tx, &s.shown, jobs); return err })
	return n, historyErr("adopt failed jobs", err)
}

func (s *pgStore) FailedJobs(ctx context.Context, f FailedFilter) ([]FailedJob, error) {
	l, err := historysql.PGFailedJobs(ctx, s.pool, f)
	return l, historyErr("failed list", err)
}

func (s *pgStore) FailedJob(ctx context.Context, id string) (*FailedJob, error) {
	j, err := historysql.PGGetFailed(ctx, s.pool, id)
	return j, historyErr("failed job", err)
}

func (s *pgStore) RemoveFailed(ctx context.Context, jobs []FailedJob, requeued bool) error {
	return historyErr("remove from the failed list", s.tx(ctx, func(tx pgx.Tx) error {
		return historysql.PGRemove(ctx, tx, jobs, requeued)
	}))
}

func (s *pgStore) Timeline(ctx context.Context, entity string) ([]TimelineJob, error) {
	l, err := historysql.PGTimeline(ctx, s.pool, entity)
	return l, historyErr("timeline", err)
}

func (s *pgStore) JobEntity(ctx context.Context, id string) (string, error) {
	e, err := historysql.PGJobEntity(ctx, s.pool, id)
	return e, historyErr("job entity", err)
}

func (s *pgStore) PruneHistory(ctx context.Context, before time.Time) (int64, error) {
	n, err := historysql.PGPrune(ctx, s.pool, before)
	return n, historyErr("prune history", err)
}
