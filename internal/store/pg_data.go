package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/errandhq/errand/internal/job"
	"github.com/jackc/pgx/v5"
)

// PostgreSQL's users, orders and shipments: the same methods as SQLite's
// (users.go, orders.go), whose comments say what each guarantees. Every
// dedupe is an INSERT … ON CONFLICT DO NOTHING whose outcome is read from
// its result, so two processes racing on one key cannot both win.

const pgUserColumns = `id, email, first_name, last_name, password_hash, sales_rep, created_at, updated_at`

func scanUser(row pgx.Row) (*User, error) {
	var u User
	var created, updated int64
	if err := row.Scan(&u.ID, &u.Email, &u.FirstName, &u.LastName, &u.PasswordHash, &u.SalesRep, &created, &updated); err != nil {
		return nil, err
	}
	u.CreatedAt, u.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	return &u, nil
}

func (s *pgStore) CreateUser(ctx context.Context, u *User, build func(u *User) ([]job.Envelope, error)) error {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return s.tx(ctx, func(tx pgx.Tx) error {
		var id int64
		err := tx.QueryRow(ctx,
			`INSERT INTO users (email, first_name, last_name, password_hash, sales_rep, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
			 ON CONFLICT ((lower(email))) DO NOTHING RETURNING id`,
			u.Email, u.FirstName, u.LastName, u.PasswordHash, u.SalesRep, now.UnixMilli(), now.UnixMilli()).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrEmailTaken
		}
		if err != nil {
			return fmt.Errorf("store: create user: %w", err)
		}
		u.ID, u.CreatedAt, u.UpdatedAt = id, now, now
		jobs, err := build(u)
		if err != nil {
			return err
		}
		return s.pgInsertJobs(ctx, tx, jobs)
	})
}

func (s *pgStore) EmailRegistered(ctx context.Context, email string) (bool, error) {
	var one int
	err := s.pool.QueryRow(ctx, `SELECT 1 FROM users WHERE lower(email) = lower($1) LIMIT 1`, email).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: look up email: %w", err)
	}
	return true, nil
}

func (s *pgStore) GetUser(ctx context.Context, id int64) (*User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+pgUserColumns+` FROM users WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: get user: %w", err)
	}
	return u, nil
}

func (s *pgStore) CountUsers(ctx context.Context) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM users`).Scan(&n)
	return n, err
}

// UpdateUser locks the user's row as it reads it: two changes of one user
// from two processes are applied one after the other, each with the "before"
// the other left, and their jobs reach the outbox in that order.
func (s *pgStore) UpdateUser(ctx context.Context, id int64, changed map[string]string, build func(before, after *User) ([]job.Envelope, error)) (*User, error) {
	var after *User
	err := s.tx(ctx, func(tx pgx.Tx) error {
		u, err := scanUser(tx.QueryRow(ctx, `SELECT `+pgUserColumns+` FROM users WHERE id = $1 FOR UPDATE`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("store: update user: %w", err)
		}
		before := *u
		if err := applyChanges(u, changed); err != nil {
			return err
		}
		u.UpdatedAt = time.Now().UTC().Truncate(time.Millisecond)
		if _, err := tx.Exec(ctx, `UPDATE users SET email = $1, first_name = $2, last_name = $3, sales_rep = $4, updated_at = $5 WHERE id = $6`,
			u.Email, u.FirstName, u.LastName, u.SalesRep, u.UpdatedAt.UnixMilli(), id); err != nil {
			if pgUnique(err) {
				return ErrEmailTaken
			}
			return fmt.Errorf("store: update user: %w", err)
		}
		jobs, err := build(&before, u)
		if err != nil {
			return err
		}
		after = u
		return s.pgInsertJobs(ctx, tx, jobs)
	})
	return after, err
}

func (s *pgStore) SaveOrder(ctx context.Context, eventID string, o *Order, jobs []job.Envelope) error {
	now := time.Now().UTC()
	return s.tx(ctx, func(tx pgx.Tx) error {
		if eventID != "" {
			tag, err := tx.Exec(ctx, `INSERT INTO webhook_events (source, event_id, received_at) VALUES ('shopify', $1, $2) ON CONFLICT DO NOTHING`, eventID, now.UnixMilli())
			if err != nil {
				return fmt.Errorf("store: webhook event: %w", err)
			}
			if tag.RowsAffected() == 0 {
				return ErrDuplicate
			}
		}
		tag, err := tx.Exec(ctx, `INSERT INTO orders (id, name, email, payload, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
			o.ID, o.Name, o.Email, o.Payload, now.UnixMilli())
		if err != nil {
			return fmt.Errorf("store: save order: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return ErrDuplicate
		}
		o.CreatedAt = now
		return s.pgInsertJobs(ctx, tx, jobs)
	})
}

func (s *pgStore) GetOrder(ctx context.Context, id int64) (*Order, error) {
	var o Order
	var created int64
	err := s.pool.QueryRow(ctx, `SELECT id, name, email, payload, created_at FROM orders WHERE id = $1`, id).
		Scan(&o.ID, &o.Name, &o.Email, &o.Payload, &created)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: get order: %w", err)
	}
	o.CreatedAt = time.UnixMilli(created).UTC()
	return &o, nil
}

func (s *pgStore) SaveShipment(ctx context.Context, sh *Shipment, build func(*Shipment) ([]job.Envelope, error)) error {
	now := time.Now().UTC()
	return s.tx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx,
			`INSERT INTO shipments (order_id, tracking_number, carrier, tracking_url, shipped_at, sync_state, created_at) VALUES ($1, $2, $3, $4, $5, 'pending', $6)
			 ON CONFLICT (order_id, tracking_number) DO NOTHING RETURNING id`,
			sh.OrderID, sh.TrackingNumber, sh.Carrier, sh.TrackingURL, sh.ShippedAt, now.UnixMilli()).Scan(&sh.ID)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrDuplicate
		}
		if err != nil {
			return fmt.Errorf("store: save shipment: %w", err)
		}
		sh.SyncState, sh.CreatedAt = "pending", now
		jobs, err := build(sh)
		if err != nil {
			return err
		}
		if len(jobs) > 0 {
			sh.JobID = jobs[0].ID
			if _, err := tx.Exec(ctx, `UPDATE shipments SET job_id = $1 WHERE id = $2`, sh.JobID, sh.ID); err != nil {
				return fmt.Errorf("store: save shipment: %w", err)
			}
		}
		return s.pgInsertJobs(ctx, tx, jobs)
	})
}

func (s *pgStore) RequeueShipment(ctx context.Context, id int64, n int, jobID string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE shipments SET job_id = $1, requeues = $2 WHERE id = $3 AND requeues = $4 AND sync_state = 'pending'`, jobID, n, id, n-1)
	if err != nil {
		return fmt.Errorf("store: requeue shipment %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrDuplicate
	}
	return nil
}

func (s *pgStore) MarkShipmentSynced(ctx context.Context, id int64) error {
	tag, err := s.pool.Exec(ctx, `UPDATE shipments SET sync_state = 'synced', synced_at = $1 WHERE id = $2`, time.Now().UnixMilli(), id)
	if err != nil {
		return fmt.Errorf("store: mark shipment %d synced: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store: shipment %d: %w", id, ErrNotFound)
	}
	return nil
}

const pgShipmentColumns = `id, order_id, tracking_number, carrier, tracking_url, shipped_at, sync_state, job_id, requeues, created_at`

func scanShipment(row pgx.Row) (Shipment, error) {
	var sh Shipment
	var created int64
	err := row.Scan(&sh.ID, &sh.OrderID, &sh.TrackingNumber, &sh.Carrier, &sh.TrackingURL, &sh.ShippedAt, &sh.SyncState, &sh.JobID, &sh.Requeues, &created)
	sh.CreatedAt = time.UnixMilli(created).UTC()
	return sh, err
}

func (s *pgStore) GetShipment(ctx context.Context, id int64) (*Shipment, error) {
	sh, err := scanShipment(s.pool.QueryRow(ctx, `SELECT `+pgShipmentColumns+` FROM shipments WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: get shipment: %w", err)
	}
	return &sh, nil
}

func (s *pgStore) PendingShipments(ctx context.Context, olderThan time.Time, limit int) ([]Shipment, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+pgShipmentColumns+` FROM shipments
		 WHERE sync_state = 'pending' AND created_at < $1 ORDER BY created_at LIMIT $2`, olderThan.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("store: pending shipments: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Shipment, error) { return scanShipment(r) })
	if err != nil {
		return nil, fmt.Errorf("store: pending shipments: %w", err)
	}
	return out, nil
}
