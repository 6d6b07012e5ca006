package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/errandhq/errand/internal/job"
)

// ErrDuplicate is returned when a webhook delivery or shipment was already
// recorded: the caller answers 200 and queues nothing.
var ErrDuplicate = errors.New("already recorded")

// Order is a paid Shopify order.
type Order struct {
	ID        int64
	Name      string
	Email     string
	Payload   string // the webhook's JSON, as received
	CreatedAt time.Time
}

// SaveOrder records a paid order and its jobs in one transaction. eventID, when
// not empty, is the webhook delivery's id: a repeat returns ErrDuplicate and
// changes nothing. A second delivery of the same order under a new event id
// updates nothing and queues nothing either.
func (s *sqliteStore) SaveOrder(ctx context.Context, eventID string, o *Order, jobs []job.Envelope) error {
	now := time.Now().UTC()
	return s.tx(ctx, func(tx *sql.Tx) error {
		if eventID != "" {
			if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_events (source, event_id, received_at) VALUES ('shopify', ?, ?)`, eventID, now.UnixMilli()); err != nil {
				if isUnique(err) {
					return ErrDuplicate
				}
				return fmt.Errorf("store: webhook event: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO orders (id, name, email, payload, created_at) VALUES (?, ?, ?, ?, ?)`,
			o.ID, o.Name, o.Email, o.Payload, now.UnixMilli()); err != nil {
			if isUnique(err) {
				return ErrDuplicate
			}
			return fmt.Errorf("store: save order: %w", err)
		}
		o.CreatedAt = now
		return s.insertJobs(ctx, tx, jobs)
	})
}

// GetOrder returns the order with id.
func (s *sqliteStore) GetOrder(ctx context.Context, id int64) (*Order, error) {
	var o Order
	var created int64
	err := s.db.QueryRowContext(ctx, `SELECT id, name, email, payload, created_at FROM orders WHERE id = ?`, id).
		Scan(&o.ID, &o.Name, &o.Email, &o.Payload, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: get order: %w", err)
	}
	o.CreatedAt = time.UnixMilli(created).UTC()
	return &o, nil
}

// Shipment is a tracking number reported by the fulfillment platform.
type Shipment struct {
	ID             int64     `json:"id"`
	OrderID        int64     `json:"order_id"`
	TrackingNumber string    `json:"tracking_number"`
	Carrier        string    `json:"carrier"`
	TrackingURL    string    `json:"tracking_url"`
	ShippedAt      string    `json:"shipped_at"`
	SyncState      string    `json:"sync_state"` // pending | synced
	JobID          string    `json:"job_id"`
	Requeues       int       `json:"requeues"`
	CreatedAt      time.Time `json:"created_at"`
}

// SaveShipment records a shipment as pending and, in the same transaction,
// the job that syncs it (built once the shipment has its id). A repeat of the
// same order and tracking number returns ErrDuplicate.
func (s *sqliteStore) SaveShipment(ctx context.Context, sh *Shipment, build func(*Shipment) ([]job.Envelope, error)) error {
	now := time.Now().UTC()
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`INSERT INTO shipments (order_id, tracking_number, carrier, tracking_url, shipped_at, sync_state, created_at) VALUES (?, ?, ?, ?, ?, 'pending', ?)`,
			sh.OrderID, sh.TrackingNumber, sh.Carrier, sh.TrackingURL, sh.ShippedAt, now.UnixMilli())
		if err != nil {
			if isUnique(err) {
				return ErrDuplicate
			}
			return fmt.Errorf("store: save shipment: %w", err)
		}
		if sh.ID, err = res.LastInsertId(); err != nil {
			return err
		}
		sh.SyncState, sh.CreatedAt = "pending", now
		jobs, err := build(sh)
		if err != nil {
			return err
		}
		if len(jobs) > 0 {
			sh.JobID = jobs[0].ID
			if _, err := tx.ExecContext(ctx, `UPDATE shipments SET job_id = ? WHERE id = ?`, sh.JobID, sh.ID); err != nil {
				return fmt.Errorf("store: save shipment: %w", err)
			}
		}
		return s.insertJobs(ctx, tx, jobs)
	})
}

// RequeueShipment records that the reconciler queued job for the shipment,
// the n-th time. It fails with ErrDuplicate when another reconciler already
// did (requeues is no longer n-1), so a shipment is queued again once per turn.
func (s *sqliteStore) RequeueShipment(ctx context.Context, id int64, n int, jobID string) error {
	res, err := s.exec(ctx, `UPDATE shipments SET job_id = ?, requeues = ? WHERE id = ? AND requeues = ? AND sync_state = 'pending'`, jobID, n, id, n-1)
	if err != nil {
		return fmt.Errorf("store: requeue shipment %d: %w", id, err)
	}
	if k, _ := res.RowsAffected(); k == 0 {
		return ErrDuplicate
	}
	return nil
}

// MarkShipmentSynced records that the shipment's tracking reached Shopify.
func (s *sqliteStore) MarkShipmentSynced(ctx context.Context, id int64) error {
	res, err := s.exec(ctx, `UPDATE shipments SET sync_state = 'synced', synced_at = ? WHERE id = ?`, time.Now().UnixMilli(), id)
	if err != nil {
		return fmt.Errorf("store: mark shipment %d synced: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("store: shipment %d: %w", id, ErrNotFound)
	}
	return nil
}

// GetShipment returns the shipment with id.
func (s *sqliteStore) GetShipment(ctx context.Context, id int64) (*Shipment, error) {
	var sh Shipment
	var created int64
	err := s.db.QueryRowContext(ctx,
		`SELECT id, order_id, tracking_number, carrier, tracking_url, shipped_at, sync_state, job_id, requeues, created_at FROM shipments WHERE id = ?`, id).
		Scan(&sh.ID, &sh.OrderID, &sh.TrackingNumber, &sh.Carrier, &sh.TrackingURL, &sh.ShippedAt, &sh.SyncState, &sh.JobID, &sh.Requeues, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: get shipment: %w", err)
	}
	sh.CreatedAt = time.UnixMilli(created).UTC()
	return &sh, nil
}

// PendingShipments returns shipments still pending that were saved before
// olderThan, oldest first.
func (s *sqliteStore) PendingShipments(ctx context.Context, olderThan time.Time, limit int) ([]Shipment, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT id, order_id, tracking_number, carrier, tracking_url, shipped_at, sync_state, job_id, requeues, created_at FROM shipments
		 WHERE sync_state = 'pending' AND created_at < ? ORDER BY created_at LIMIT ?`, olderThan.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("store: pending shipments: %w", err)
	}
	defer rows.Close()
	var out []Shipment
	for rows.Next() {
		var sh Shipment
		var created int64
		if err := rows.Scan(&sh.ID, &sh.OrderID, &sh.TrackingNumber, &sh.Carrier, &sh.TrackingURL, &sh.ShippedAt, &sh.SyncState, &sh.JobID, &sh.Requeues, &created); err != nil {
			return nil, err
		}
		sh.CreatedAt = time.UnixMilli(created).UTC()
		out = append(out, sh)
	}
	return out, rows.Err()
}

func isUnique(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}
