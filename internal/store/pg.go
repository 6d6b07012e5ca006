package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	neturl "net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/store/historysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/postgres/*.sql
var pgMigrations embed.FS

// outboxChannel is what a transaction that writes jobs NOTIFYs: PostgreSQL
// delivers it at commit, so a relay woken by it finds the rows.
const outboxChannel = "errand_outbox"

// migrateLock is the advisory lock every migration takes first, so two
// processes starting at once apply each migration once.
const migrateLock int64 = 0x6572_7261_6e64 // "errand"

// defaultPoolSize is the connections one process keeps when the URL does not
// say (pool_max_conns): enough for a serve's requests beside the group
// commit, and four processes stay well within PostgreSQL's default
// max_connections of 100.
const defaultPoolSize = 10

// pgStore is a PostgreSQL database, shared by any number of processes.
type pgStore struct {
	pool *pgxpool.Pool

	saves     chan *saveReq // SaveAPIJob's group commit
	saverOnce sync.Once
	closed    chan struct{}
	closeOnce sync.Once

	shown historysql.Masker // masks the payloads kept in the history
}

// openPostgres connects to the database at url and checks that it answers;
// its errors name database.url with the password masked.
func openPostgres(url string) (*pgStore, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("database.url %s is not a valid PostgreSQL URL: %s", MaskURL(url), scrub(err, url))
	}
	if !strings.Contains(url, "pool_max_conns=") {
		cfg.MaxConns = defaultPoolSize
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err == nil {
		err = pool.Ping(ctx)
		if err != nil {
			pool.Close()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("cannot reach PostgreSQL at database.url %s: %s", MaskURL(url), scrub(err, url))
	}
	return &pgStore{pool: pool, saves: make(chan *saveReq), closed: make(chan struct{})}, nil
}

// MaskURL returns a database URL fit to show: its password, in the user
// part or the query, replaced by xxxxx.
func MaskURL(raw string) string {
	u, err := neturl.Parse(raw)
	if err != nil {
		return userPassword.ReplaceAllString(queryPassword.ReplaceAllString(raw, "${1}xxxxx"), "${1}xxxxx@")
	}
	if _, ok := u.User.Password(); ok {
		u.User = neturl.UserPassword(u.User.Username(), "xxxxx")
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

var (
	userPassword  = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]*://[^:/?#@]*:).*@`)
	queryPassword = regexp.MustCompile(`((?:^|[?&\s])password=)[^&\s]*`)
)

// scrub is err's text with every form of url's password masked, in case a
// driver's message quotes it.
func scrub(err error, url string) string {
	msg := err.Error()
	var secrets []string
	if u, perr := neturl.Parse(url); perr == nil {
		if pw, ok := u.User.Password(); ok {
			secrets = append(secrets, pw, neturl.QueryEscape(pw), neturl.PathEscape(pw))
		}
		if pw := u.Query().Get("password"); pw != "" {
			secrets = append(secrets, pw, neturl.QueryEscape(pw))
		}
	}
	msg = strings.ReplaceAll(msg, url, MaskURL(url))
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
		}
	}
	// pgx puts each attempt (with TLS, without) on a line of its own: one
	// line each distinct reason.
	var parts []string
	for _, l := range strings.Split(msg, "\n") {
		if l = strings.TrimSpace(l); l != "" && !slices.Contains(parts, l) {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, " ")
}

func (s *pgStore) Close() error {
	s.closeOnce.Do(func() { close(s.closed) })
	s.pool.Close()
	return nil
}

func (s *pgStore) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// Migrate applies each migration in its own transaction, which first takes
// an advisory lock: a second process starting at once waits, then finds the
// migration applied. A transaction-scoped lock also holds behind PgBouncer
// in transaction mode, where a session lock would not.
func (s *pgStore) Migrate(ctx context.Context) ([]int, error) {
	list, err := migrationFiles(pgMigrations, "migrations/postgres")
	if err != nil {
		return nil, err
	}
	var applied []int
	for _, m := range list {
		did := false
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrateLock); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
				return err
			}
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM schema_migrations WHERE version = $1`, m.version).Scan(&n); err != nil || n > 0 {
				return err
			}
			if _, err := tx.Exec(ctx, string(m.body)); err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`, m.version, time.Now().Unix())
			did = err == nil
			return err
		})
		if err != nil {
			return applied, fmt.Errorf("store: migrate: %w", err)
		}
		if did {
			applied = append(applied, m.version)
		}
	}
	return applied, nil
}

// WatchOutbox listens on its own connection (not one of the pool's, which
// could carry the LISTEN to another user of the pool) and calls wake on every
// notification, and once after each (re)connection for what was committed
// meanwhile. failed hears why listening stopped; it starts again after a
// pause.
func (s *pgStore) WatchOutbox(ctx context.Context, wake func(), failed func(error)) {
	pause := 250 * time.Millisecond
	for {
		err := s.listen(ctx, wake)
		if ctx.Err() != nil {
			return
		}
		if failed != nil {
			failed(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, 5*time.Second)
	}
}

func (s *pgStore) listen(ctx context.Context, wake func()) error {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return fmt.Errorf("store: listen: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+outboxChannel); err != nil {
		return fmt.Errorf("store: listen: %w", err)
	}
	wake()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return fmt.Errorf("store: listen: %w", err)
		}
		wake()
	}
}

// pgTx runs fn in a transaction, committed when fn returns nil.
func (s *pgStore) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, fn)
}

const pgInsertJobSQL = `INSERT INTO outbox (id, type, queue, payload, due_at_ms, queued_at_ms, callback) VALUES ($1, $2, $3, $4, $5, $6, $7)`

// queueJobs adds the inserts of jobs (and of their history's "queued") to b,
// and the NOTIFY that wakes the relays when the transaction commits.
func (s *pgStore) queueJobs(b *pgx.Batch, jobs []job.Envelope) {
	for _, e := range jobs {
		b.Queue(pgInsertJobSQL, e.ID, e.Type, e.Queue, e.Payload, e.DueAt.UnixMilli(), e.QueuedAt.UnixMilli(), e.Callback)
		s.queueQueued(b, e)
	}
	if len(jobs) > 0 {
		b.Queue(`SELECT pg_notify($1, '')`, outboxChannel)
	}
}

// pgInsertJobs writes envelopes into the outbox within tx, in one round trip.
func (s *pgStore) pgInsertJobs(ctx context.Context, tx pgx.Tx, jobs []job.Envelope) error {
	if len(jobs) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	s.queueJobs(b, jobs)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	return nil
}

func pgUnique(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// nowMS is the database's clock in Unix milliseconds: the outbox's leases
// are set and compared by one clock, whatever the relays' machines say.
const nowMS = `(extract(epoch FROM clock_timestamp()) * 1000)::bigint`
