package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/errandhq/errand/internal/job"
)

// User is a registered customer.
type User struct {
	ID           int64     `json:"id"`
	Email        string    `json:"email"`
	FirstName    string    `json:"first_name"`
	LastName     string    `json:"last_name"`
	PasswordHash string    `json:"-"`
	SalesRep     string    `json:"sales_rep,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// ErrEmailTaken is returned when the email is already registered.
var ErrEmailTaken = errors.New("email already registered")

// ErrNotFound is returned when a row does not exist.
var ErrNotFound = errors.New("not found")

// CreateUser saves u and queues jobs in one transaction: either the user and
// every job are saved, or nothing is. It sets u.ID and the timestamps. jobs may
// refer to the user's ID through build, which is called inside the transaction.
func (s *sqliteStore) CreateUser(ctx context.Context, u *User, build func(u *User) ([]job.Envelope, error)) error {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`INSERT INTO users (email, first_name, last_name, password_hash, sales_rep, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			u.Email, u.FirstName, u.LastName, u.PasswordHash, u.SalesRep, now.UnixMilli(), now.UnixMilli())
		if err != nil {
			if isUnique(err) {
				return ErrEmailTaken
			}
			return fmt.Errorf("store: create user: %w", err)
		}
		id, err := res.LastInsertId()
		if err != nil {
			return err
		}
		u.ID, u.CreatedAt, u.UpdatedAt = id, now, now
		jobs, err := build(u)
		if err != nil {
			return err
		}
		return s.insertJobs(ctx, tx, jobs)
	})
}

// EmailRegistered reports whether a user already has email (compared without
// case, as the unique index does). Registration asks before hashing the
// password, so a repeat costs no bcrypt work; the unique index still decides
// a race.
func (s *sqliteStore) EmailRegistered(ctx context.Context, email string) (bool, error) {
	var one int
	err := s.db.QueryRowContext(ctx, `SELECT 1 FROM users WHERE email = ? LIMIT 1`, email).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: look up email: %w", err)
	}
	return true, nil
}

// GetUser returns the user with id.
func (s *sqliteStore) GetUser(ctx context.Context, id int64) (*User, error) {
	var u User
	var created, updated int64
	err := s.db.QueryRowContext(ctx,
		`SELECT id, email, first_name, last_name, password_hash, sales_rep, created_at, updated_at FROM users WHERE id = ?`, id).
		Scan(&u.ID, &u.Email, &u.FirstName, &u.LastName, &u.PasswordHash, &u.SalesRep, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: get user: %w", err)
	}
	u.CreatedAt, u.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	return &u, nil
}

// CountUsers returns how many users are registered.
func (s *sqliteStore) CountUsers(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM users`).Scan(&n)
	return n, err
}

// UpdateUser applies the changed fields (first_name, last_name, email,
// sales_rep) to the user with id and, in the same transaction, queues the jobs
// build returns for the user as it was and as it is. It returns the updated
// user.
func (s *sqliteStore) UpdateUser(ctx context.Context, id int64, changed map[string]string, build func(before, after *User) ([]job.Envelope, error)) (*User, error) {
	var after *User
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var u User
		var created, updated int64
		err := tx.QueryRowContext(ctx,
			`SELECT id, email, first_name, last_name, password_hash, sales_rep, created_at, updated_at FROM users WHERE id = ?`, id).
			Scan(&u.ID, &u.Email, &u.FirstName, &u.LastName, &u.PasswordHash, &u.SalesRep, &created, &updated)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("store: update user: %w", err)
		}
		u.CreatedAt, u.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
		before := u
		if err := applyChanges(&u, changed); err != nil {
			return err
		}
		u.UpdatedAt = time.Now().UTC().Truncate(time.Millisecond)
		if _, err := tx.ExecContext(ctx, `UPDATE users SET email = ?, first_name = ?, last_name = ?, sales_rep = ?, updated_at = ? WHERE id = ?`,
			u.Email, u.FirstName, u.LastName, u.SalesRep, u.UpdatedAt.UnixMilli(), id); err != nil {
			if isUnique(err) {
				return ErrEmailTaken
			}
			return fmt.Errorf("store: update user: %w", err)
		}
		jobs, err := build(&before, &u)
		if err != nil {
			return err
		}
		after = &u
		return s.insertJobs(ctx, tx, jobs)
	})
	return after, err
}

// applyChanges sets the changed fields of u.
func applyChanges(u *User, changed map[string]string) error {
	for k, v := range changed {
		switch k {
		case "email":
			u.Email = v
		case "first_name":
			u.FirstName = v
		case "last_name":
			u.LastName = v
		case "sales_rep":
			u.SalesRep = v
		default:
			return fmt.Errorf("store: update user: unknown field %q", k)
		}
	}
	return nil
}
