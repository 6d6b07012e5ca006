package store_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/store"
)

// Every API job records the token that queued it, with or without an
// Idempotency-Key.
func TestJobOwners(t *testing.T) {
	eachBackend(t, func(t *testing.T, _ string, st store.Store) { saveOwnedJobs(t, st) })
}

func saveOwnedJobs(t *testing.T, st store.Store) {
	ctx := context.Background()
	now := time.Now()
	for _, j := range []store.APIJob{
		{Envelope: job.Envelope{ID: "JOB-A", Type: "ops:noop", Queue: "default", Payload: []byte("{}"), DueAt: now, QueuedAt: now}, TokenHash: "aaaa"},
		{Envelope: job.Envelope{ID: "JOB-B", Type: "ops:noop", Queue: "default", Payload: []byte("{}"), DueAt: now, QueuedAt: now}, TokenHash: "bbbb",
			Key: "k", BodyHash: "h", Status: 202, Response: `{"id":"JOB-B"}`},
	} {
		if err := st.SaveAPIJob(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	for id, want := range map[string]string{"JOB-A": "aaaa", "JOB-B": "bbbb"} {
		if got, err := st.JobOwner(ctx, id); err != nil || got != want {
			t.Fatalf("owner of %s: %q %v, want %q", id, got, err, want)
		}
	}
	if _, err := st.JobOwner(ctx, "callback-JOB-A-completed"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a job errand queued itself has an owner: %v", err)
	}
}

// A SQLite database of an errand older than the owners' table knows who
// queued a job only from the answers kept for Idempotency-Keys; the
// migration reads them. (No PostgreSQL database is that old.)
func TestJobOwnersFromAnswersKeptBeforeTheUpgrade(t *testing.T) {
	path := filepath.Join(t.TempDir(), "errand.db")
	st := openMigrated(t, "file:"+path)
	ctx := context.Background()
	saveOwnedJobs(t, st)

	// The database as it was before the owners' migration: only the kept
	// answer of JOB-B (and one of a refused request) says who queued it.
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, q := range []string{
		`DROP TABLE api_jobs`,
		`DELETE FROM schema_migrations WHERE version = 4`,
		`INSERT INTO idempotency (token_hash, key, body_hash, status, response, created_at) VALUES ('cccc', 'k2', 'h', 409, '{"id":"JOB-C"}', 0)`,
		`INSERT INTO idempotency (token_hash, key, body_hash, status, response, created_at) VALUES ('cccc', 'k3', 'h', 202, 'not json', 0)`,
	} {
		if _, err := raw.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if applied, err := st.Migrate(ctx); err != nil || len(applied) != 1 || applied[0] != 4 {
		t.Fatalf("migrate again: %v %v", applied, err)
	}
	if got, err := st.JobOwner(ctx, "JOB-B"); err != nil || got != "bbbb" {
		t.Fatalf("owner of JOB-B after the upgrade: %q %v", got, err)
	}
	for _, id := range []string{"JOB-A", "JOB-C"} {
		if _, err := st.JobOwner(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("%s has an owner after the upgrade: %v", id, err)
		}
	}
}
