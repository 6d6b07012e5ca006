package outbox_test

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/outbox"
	"github.com/errandhq/errand/internal/queue"
	"github.com/errandhq/errand/internal/redistest"
	"github.com/errandhq/errand/internal/store"
	"github.com/errandhq/errand/jobs"
	"github.com/hibiken/asynq"
)

// outboxOf returns a store holding n jobs in its outbox, and the registry.
func outboxOf(t *testing.T, n int) (store.Store, *job.Registry) {
	t.Helper()
	cfg, err := config.Load("", false, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := job.NewRegistry(cfg)
	jobs.Register(reg)
	if err := reg.Configure(nil); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open("file:" + filepath.Join(t.TempDir(), "errand.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if _, err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		u := &store.User{Email: fmt.Sprintf("u%d@shop.test", i), FirstName: "U", LastName: "L", PasswordHash: "x"}
		if err := st.CreateUser(t.Context(), u, func(*store.User) ([]job.Envelope, error) {
			e, err := reg.Prepare(jobs.Noop{})
			return []job.Envelope{e}, err
		}); err != nil {
			t.Fatal(err)
		}
	}
	return st, reg
}

func backlog(t *testing.T, st store.Store) int {
	t.Helper()
	n, _, err := st.OutboxBacklog(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func pending(t *testing.T, rs *redistest.Server) int {
	t.Helper()
	info, err := asynq.NewInspectorFromRedisClient(rs.Client()).GetQueueInfo("default")
	if err != nil {
		t.Fatal(err)
	}
	return info.Pending
}

// With a replica that does not answer, relayed jobs stay in the outbox too;
// once it has them, the rows go, and the jobs relayed again are refused as
// duplicates.
func TestRelayKeepsRowsUntilAReplicaHasThem(t *testing.T) {
	master := redistest.Start(t)
	replica := redistest.Start(t, redistest.ReplicaOf(master.Addr()))
	waitUntil(t, "the replica in sync", func() bool {
		v, _ := master.Client().Info(t.Context(), "replication").Result()
		return strings.Contains(v, "state=online")
	})
	const n = 50
	st, reg := outboxOf(t, n)
	relay := outbox.NewRelay(st, queue.NewClient(reg, master.Client()), slog.New(slog.NewTextHandler(io.Discard, nil)))
	relay.WaitForReplica(master.Client(), 200*time.Millisecond, false)

	replica.Pause()
	if moved, err := relay.RelayOnce(t.Context()); err != nil || moved != n {
		t.Fatalf("relayed %d (%v), want %d", moved, err, n)
	}
	if got := pending(t, master); got != n {
		t.Fatalf("%d jobs in the master, want %d", got, n)
	}
	if got := backlog(t, st); got != n {
		t.Fatalf("outbox holds %d with the replica paused, want all %d kept", got, n)
	}
	replica.Resume()
	// The rows come back when their lease ends (10 s).
	waitUntil(t, "the rows to be relayed again and deleted", func() bool {
		_, _ = relay.RelayOnce(t.Context())
		return backlog(t, st) == 0
	})
	if got := pending(t, master); got != n {
		t.Fatalf("%d jobs in the master after the second relay, want %d (duplicates refused)", got, n)
	}
}

// A standalone Redis without replicas is not waited for; told to wait
// always (Sentinel), the relay keeps the rows.
func TestRelayWithoutReplica(t *testing.T) {
	rs := redistest.Start(t)
	for _, always := range []bool{false, true} {
		st, reg := outboxOf(t, 10)
		relay := outbox.NewRelay(st, queue.NewClient(reg, rs.Client()), slog.New(slog.NewTextHandler(io.Discard, nil)))
		relay.WaitForReplica(rs.Client(), 100*time.Millisecond, always)
		if _, err := relay.RelayOnce(t.Context()); err != nil {
			t.Fatal(err)
		}
		want := 0
		if always {
			want = 10
		}
		if got := backlog(t, st); got != want {
			t.Fatalf("always=%v: outbox holds %d after relaying to a Redis without replicas, want %d", always, got, want)
		}
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
