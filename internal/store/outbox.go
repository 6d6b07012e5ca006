package store

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/errandhq/errand/internal/job"
)

// ClaimOutbox takes up to limit jobs no other relay holds, for lease. Jobs are
// claimed in the order they were written.
func (s *sqliteStore) ClaimOutbox(ctx context.Context, lease time.Duration, limit int) ([]job.Envelope, error) {
	now := time.Now()
	var out []job.Envelope
	err := s.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx,
			`UPDATE outbox SET claimed_until = ?, tries = tries + 1
			 WHERE seq IN (SELECT seq FROM outbox WHERE claimed_until < ? ORDER BY seq LIMIT ?)
			 RETURNING seq, id, type, queue, payload, due_at_ms, queued_at_ms, callback`,
			now.Add(lease).UnixMilli(), now.UnixMilli(), limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		var seqs []int64
		for rows.Next() {
			var e job.Envelope
			var seq, due, queued int64
			if err := rows.Scan(&seq, &e.ID, &e.Type, &e.Queue, &e.Payload, &due, &queued, &e.Callback); err != nil {
				return err
			}
			e.DueAt, e.QueuedAt = time.UnixMilli(due), time.UnixMilli(queued)
			out = append(out, e)
			seqs = append(seqs, seq)
		}
		// RETURNING gives no order: jobs go to Redis in the order they were
		// saved, which ordered job types (order_by) rely on.
		sort.Sort(bySeq{out, seqs})
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("store: claim outbox: %w", err)
	}
	return out, nil
}

// bySeq sorts claimed envelopes by their outbox sequence.
type bySeq struct {
	e   []job.Envelope
	seq []int64
}

func (b bySeq) Len() int           { return len(b.e) }
func (b bySeq) Less(i, j int) bool { return b.seq[i] < b.seq[j] }
func (b bySeq) Swap(i, j int) {
	b.e[i], b.e[j] = b.e[j], b.e[i]
	b.seq[i], b.seq[j] = b.seq[j], b.seq[i]
}

// DeleteOutbox removes jobs that reached Redis.
func (s *sqliteStore) DeleteOutbox(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	q := `DELETE FROM outbox WHERE id IN (?` + strings.Repeat(",?", len(ids)-1) + `)`
	if _, err := s.exec(ctx, q, args...); err != nil {
		return fmt.Errorf("store: delete outbox: %w", err)
	}
	return nil
}

// ReleaseOutbox hands claimed jobs back at once (Redis refused them), noting
// why.
func (s *sqliteStore) ReleaseOutbox(ctx context.Context, ids []string, reason string) error {
	for _, id := range ids {
		if _, err := s.exec(ctx, `UPDATE outbox SET claimed_until = 0, last_error = ? WHERE id = ?`, reason, id); err != nil {
			return fmt.Errorf("store: release outbox: %w", err)
		}
	}
	return nil
}

// OutboxBacklog returns how many jobs wait in the outbox and when the oldest
// was written (zero when none).
func (s *sqliteStore) OutboxBacklog(ctx context.Context) (int, time.Time, error) {
	var n int
	var oldest sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*), MIN(queued_at_ms) FROM outbox`).Scan(&n, &oldest)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("store: outbox backlog: %w", err)
	}
	if !oldest.Valid {
		return n, time.Time{}, nil
	}
	return n, time.UnixMilli(oldest.Int64), nil
}
