package outbox_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/outbox"
	"github.com/errandhq/errand/internal/queue"
	"github.com/errandhq/errand/internal/redistest"
	"github.com/errandhq/errand/internal/store"
	"github.com/errandhq/errand/internal/store/pgtest"
	"github.com/errandhq/errand/jobs"
	"github.com/hibiken/asynq"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// Two relays (two `errand serve` processes, each with its own connection to
// the database) draining one outbox queue every job exactly once; a
// rolled-back change queues nothing. On SQLite and on PostgreSQL.
func TestTwoRelaysQueueEachJobOnce(t *testing.T) {
	for name, url := range map[string]func(testing.TB) string{
		"sqlite":   func(t testing.TB) string { return "file:" + filepath.Join(t.TempDir(), "errand.db") },
		"postgres": pgtest.URL,
	} {
		t.Run(name, func(t *testing.T) { twoRelays(t, url(t)) })
	}
}

func twoRelays(t *testing.T, url string) {
	rs := redistest.Start(t)
	cfg, err := config.Load("", false, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := job.NewRegistry(cfg)
	jobs.Register(reg)
	if err := reg.Configure(nil); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 300
	for i := range n {
		u := &store.User{Email: fmt.Sprintf("u%d@shop.test", i), FirstName: "U", LastName: "L", PasswordHash: "x"}
		err := st.CreateUser(ctx, u, func(u *store.User) ([]job.Envelope, error) {
			e, err := reg.Prepare(jobs.Noop{})
			return []job.Envelope{e}, err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// A change that fails after its jobs were written leaves no job behind.
	err = st.CreateUser(ctx, &store.User{Email: "u1@shop.test", FirstName: "Dup", LastName: "L", PasswordHash: "x"},
		func(u *store.User) ([]job.Envelope, error) {
			e, err := reg.Prepare(jobs.Noop{})
			return []job.Envelope{e}, err
		})
	if err != store.ErrEmailTaken {
		t.Fatalf("duplicate email: %v", err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var wg sync.WaitGroup
	for range 2 {
		box, err := store.Open(url)
		if err != nil {
			t.Fatal(err)
		}
		defer box.Close()
		relay := outbox.NewRelay(box, queue.NewClient(reg, rs.Client()), log)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				moved, err := relay.RelayOnce(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				if moved == 0 {
					return
				}
			}
		}()
	}
	wg.Wait()
	backlog, _, err := st.OutboxBacklog(ctx)
	if err != nil || backlog != 0 {
		t.Fatalf("outbox backlog %d (%v)", backlog, err)
	}
	info, err := asynq.NewInspectorFromRedisClient(rs.Client()).GetQueueInfo("default")
	if err != nil {
		t.Fatal(err)
	}
	if info.Pending != n {
		t.Fatalf("%d jobs queued from %d outbox rows by two relays, want exactly %d", info.Pending, n, n)
	}
}
