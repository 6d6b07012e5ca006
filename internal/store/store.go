// Package store keeps errand's data in SQL: the users, orders and shipments,
// and the outbox of jobs written in the same transaction as the change that
// caused them. SQLite (a pure-Go driver, so the binary needs no cgo) is the
// embedded default; a postgres:// URL uses PostgreSQL through pgx, for
// several `errand serve` and `errand worker` processes on several machines.
// Both keep the same schema and guarantees, and one set of tests runs
// against both.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	neturl "net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/store/historysql"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is errand's database, as `errand serve`, the outbox relay, the CLI
// and the jobs use it.
type Store interface {
	// Close closes the database.
	Close() error
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Migrate applies the migrations not yet applied and returns their
	// versions. Several processes may migrate at once: each version is
	// applied once.
	Migrate(ctx context.Context) ([]int, error)

	CreateUser(ctx context.Context, u *User, build func(u *User) ([]job.Envelope, error)) error
	EmailRegistered(ctx context.Context, email string) (bool, error)
	GetUser(ctx context.Context, id int64) (*User, error)
	CountUsers(ctx context.Context) (int, error)
	UpdateUser(ctx context.Context, id int64, changed map[string]string, build func(before, after *User) ([]job.Envelope, error)) (*User, error)

	SaveOrder(ctx context.Context, eventID string, o *Order, jobs []job.Envelope) error
	GetOrder(ctx context.Context, id int64) (*Order, error)
	SaveShipment(ctx context.Context, sh *Shipment, build func(*Shipment) ([]job.Envelope, error)) error
	RequeueShipment(ctx context.Context, id int64, n int, jobID string) error
	MarkShipmentSynced(ctx context.Context, id int64) error
	GetShipment(ctx context.Context, id int64) (*Shipment, error)
	PendingShipments(ctx context.Context, olderThan time.Time, limit int) ([]Shipment, error)

	LookupIdempotent(ctx context.Context, tokenHash, key string) (*Stored, error)
	SaveAPIJob(ctx context.Context, j APIJob) error
	Callback(ctx context.Context, jobID string) (url, token string, err error)
	JobOwner(ctx context.Context, jobID string) (string, error)
	OutboxJob(ctx context.Context, id string) (*job.Envelope, error)

	// ClaimOutbox takes up to limit jobs no other relay holds, for lease, in
	// the order they were written.
	ClaimOutbox(ctx context.Context, lease time.Duration, limit int) ([]job.Envelope, error)
	DeleteOutbox(ctx context.Context, ids []string) error
	ReleaseOutbox(ctx context.Context, ids []string, reason string) error
	OutboxBacklog(ctx context.Context) (int, time.Time, error)
	History

	// WatchOutbox calls wake whenever another process commits jobs to the
	// outbox, until ctx ends. SQLite has no other process to hear from (the
	// relay is kicked in-process and polls); PostgreSQL listens for the
	// NOTIFY the inserting transaction sends.
	WatchOutbox(ctx context.Context, wake func(), failed func(error))
}

// Open opens the database named by url: a postgres:// or postgresql:// URL
// is PostgreSQL, anything else a SQLite file ("file:errand.db", or a path).
func Open(url string) (Store, error) {
	// A failed open is a nil Store, not a nil *pgStore inside a Store.
	if IsPostgres(url) {
		st, err := openPostgres(url)
		if err != nil {
			return nil, err
		}
		return st, nil
	}
	st, err := openSQLite(url)
	if err != nil {
		return nil, err
	}
	return st, nil
}

// IsPostgres reports whether url names a PostgreSQL database.
func IsPostgres(url string) bool {
	l := strings.ToLower(url)
	return strings.HasPrefix(l, "postgres://") || strings.HasPrefix(l, "postgresql://")
}

// sqliteStore is a SQLite database.
type sqliteStore struct {
	db     *sql.DB
	writer chan struct{} // the write lock, see lockWrites

	saves     chan *saveReq // SaveAPIJob's group commit
	saverOnce sync.Once
	closed    chan struct{}
	closeOnce sync.Once

	shown historysql.Masker // masks the payloads kept in the history
}

// openSQLite opens the SQLite database named by url ("file:errand.db", or a
// path).
func openSQLite(url string) (*sqliteStore, error) {
	dsn := url
	if !strings.HasPrefix(dsn, "file:") {
		dsn = "file:" + dsn
	}
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	// WAL lets readers run beside the writer; IMMEDIATE transactions take the
	// write lock at BEGIN, so two writers wait for each other (busy_timeout)
	// instead of failing half-way.
	if err := restrictFiles(dsn); err != nil {
		return nil, fmt.Errorf("store: open %s: %w", url, err)
	}
	dsn += sep + "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", url, err)
	}
	db.SetMaxOpenConns(8)
	if err := db.Ping(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: open %s: %w (does its directory exist, and may errand write there?)", url, err)
	}
	return &sqliteStore{db: db, writer: make(chan struct{}, 1), saves: make(chan *saveReq), closed: make(chan struct{})}, nil
}

// restrictFiles makes the database file, and the -wal, -shm and -journal
// files beside it, readable by errand's user only: they hold bcrypt hashes,
// personal data and callback tokens. SQLite creates the -wal and -shm files
// with the main file's mode, so the main file is created 0600 before SQLite
// opens it; files left wider by an older errand are tightened.
func restrictFiles(dsn string) error {
	path, ok := dbPath(dsn)
	if !ok {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		if err := f.Close(); err != nil {
			return fmt.Errorf("create %s: %w", path, err)
		}
	case errors.Is(err, fs.ErrExist):
	default:
		return fmt.Errorf("create %s: %w (does its directory exist, and may errand write there?)", path, err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if mode := fi.Mode().Perm(); mode&0o077 != 0 {
			if err := os.Chmod(p, mode&0o700); err != nil {
				return fmt.Errorf("%s is readable by other users (mode %#o) and errand cannot change that: %w", p, mode, err)
			}
		}
	}
	return nil
}

// dbPath returns the file a SQLite URI names ("file:errand.db",
// "file:///var/lib/errand/errand.db?cache=shared"), decoded as SQLite decodes
// it, and false for an in-memory or read-only database.
func dbPath(dsn string) (string, bool) {
	rest := strings.TrimPrefix(dsn, "file:")
	rest, query, _ := strings.Cut(rest, "?")
	rest, _, _ = strings.Cut(rest, "#")
	if after, ok := strings.CutPrefix(rest, "//"); ok {
		// file://localhost/path or file:///path: the authority is not part
		// of the path (SQLite refuses any other authority).
		_, p, _ := strings.Cut(after, "/")
		rest = "/" + p
	}
	path, err := neturl.PathUnescape(rest)
	if err != nil || path == "" || path == ":memory:" {
		return "", false
	}
	params, _ := neturl.ParseQuery(query)
	if mode := params.Get("mode"); mode == "memory" || mode == "ro" || params.Get("vfs") == "memdb" {
		return "", false
	}
	return path, true
}

func (s *sqliteStore) Close() error {
	s.closeOnce.Do(func() { close(s.closed) })
	return s.db.Close()
}

func (s *sqliteStore) Ping(ctx context.Context) error {
	var one int
	return s.db.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

// Migrate applies each migration in its own transaction; SQLite's write lock
// (an IMMEDIATE transaction) keeps two processes from applying one twice.
func (s *sqliteStore) Migrate(ctx context.Context) ([]int, error) {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return nil, fmt.Errorf("store: migrate: %w", err)
	}
	list, err := migrationFiles(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	var applied []int
	for _, m := range list {
		version, base, body := m.version, m.name, m.body
		err = s.tx(ctx, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return errAlreadyApplied
			}
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return fmt.Errorf("%s: %w", base, err)
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, version, time.Now().Unix())
			return err
		})
		switch {
		case errors.Is(err, errAlreadyApplied):
		case err != nil:
			return applied, fmt.Errorf("store: migrate: %w", err)
		default:
			applied = append(applied, version)
		}
	}
	return applied, nil
}

var errAlreadyApplied = errors.New("already applied")

// migration is one numbered file of migrations.
type migration struct {
	version int
	name    string
	body    []byte
}

// migrationFiles lists dir's *.sql files in order of their number.
func migrationFiles(fsys fs.FS, dir string) ([]migration, error) {
	files, err := fs.Glob(fsys, dir+"/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out []migration
	for _, f := range files {
		base := strings.TrimPrefix(f, dir+"/")
		num, _, _ := strings.Cut(base, "_")
		version, err := strconv.Atoi(num)
		if err != nil {
			return nil, fmt.Errorf("store: migration %s: name must start with a number", base)
		}
		body, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version, base, body})
	}
	return out, nil
}

// WatchOutbox returns when ctx ends: the relay of the one process that
// writes this file is kicked in-process on every commit.
func (s *sqliteStore) WatchOutbox(ctx context.Context, wake func(), failed func(error)) { <-ctx.Done() }

func (s *sqliteStore) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	if err := s.lockWrites(ctx); err != nil {
		return err
	}
	defer s.unlockWrites()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// SQLite lets one writer in at a time; the others would wait in its busy
// handler, which sleeps in growing steps (up to 100 ms) and makes a slow tail
// under concurrent requests. Writers queue here instead, in order, and each
// gets the lock as soon as the one before is done.
func (s *sqliteStore) lockWrites(ctx context.Context) error {
	select {
	case s.writer <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *sqliteStore) unlockWrites() { <-s.writer }

// exec runs one writing statement outside a transaction.
func (s *sqliteStore) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if err := s.lockWrites(ctx); err != nil {
		return nil, err
	}
	defer s.unlockWrites()
	return s.db.ExecContext(ctx, q, args...)
}

const insertJobSQL = `INSERT INTO outbox (id, type, queue, payload, due_at_ms, queued_at_ms, callback) VALUES (?, ?, ?, ?, ?, ?, ?)`

// insertJobs writes envelopes into the outbox within tx, and each job's
// "queued" into its history.
func (s *sqliteStore) insertJobs(ctx context.Context, tx *sql.Tx, jobs []job.Envelope) error {
	for _, e := range jobs {
		if _, err := tx.ExecContext(ctx, insertJobSQL,
			e.ID, e.Type, e.Queue, e.Payload, e.DueAt.UnixMilli(), e.QueuedAt.UnixMilli(), e.Callback); err != nil {
			return fmt.Errorf("outbox: %w", err)
		}
		if err := s.queued(ctx, tx, e); err != nil {
			return err
		}
	}
	return nil
}
