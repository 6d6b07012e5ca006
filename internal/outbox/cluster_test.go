package outbox_test

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/outbox"
	"github.com/errandhq/errand/internal/queue"
	"github.com/errandhq/errand/internal/rdb"
	"github.com/errandhq/errand/internal/redistest"
	"github.com/errandhq/errand/internal/store"
	"github.com/errandhq/errand/jobs"
	"github.com/redis/go-redis/v9"
)

// addJobs saves n jobs on queue q in st's outbox and returns their ids.
func addJobs(t *testing.T, st store.Store, reg *job.Registry, q string, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		u := &store.User{Email: fmt.Sprintf("%s%d@shop.test", q, i), FirstName: "U", LastName: "L", PasswordHash: "x"}
		if err := st.CreateUser(t.Context(), u, func(*store.User) ([]job.Envelope, error) {
			e, err := reg.Prepare(jobs.Noop{}, job.OnQueue(q))
			ids = append(ids, e.ID)
			return []job.Envelope{e}, err
		}); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

// otherQueue is a configured queue whose keys another master serves than
// q's.
func otherQueue(t *testing.T, nodes *redistest.Nodes, reg *job.Registry, q string) string {
	t.Helper()
	home := nodes.NodeOf(rdb.PendingKey(q))
	for name := range reg.Queues() {
		if nodes.NodeOf(rdb.PendingKey(name)) != home {
			return name
		}
	}
	t.Fatalf("every configured queue is on %s", home)
	return ""
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// The relay waits only for the masters that have a replica. Queue default's
// master has none: a WAIT there would answer 0 replicas and keep the rows,
// yet they go in the first round, while the rows of a queue whose master's
// replica is paused, in the same batch, stay until that replica has them.
func TestRelayClusterWaitsOnlyForMastersWithReplicas(t *testing.T) {
	nodes := redistest.StartCluster(t, 3)
	st, reg := outboxOf(t, 0)
	other := otherQueue(t, nodes, reg, "default")
	replica := nodes.AddReplica(nodes.Server(nodes.NodeOf(rdb.PendingKey(other))))
	addJobs(t, st, reg, "default", 20)
	otherIDs := addJobs(t, st, reg, other, 20)
	relay := outbox.NewRelay(st, queue.NewClient(reg, nodes.Client()), quiet())
	relay.WaitForReplica(nodes.Client(), 500*time.Millisecond, false)

	replica.Pause()
	if moved, err := relay.RelayOnce(t.Context()); err != nil || moved != 40 {
		t.Fatalf("relayed %d (%v), want 40", moved, err)
	}
	if got := backlog(t, st); got != 20 {
		t.Fatalf("outbox holds %d, want the 20 of %s, whose master's replica is paused (default's master has no replica: not waited for)", got, other)
	}
	for _, id := range otherIDs {
		if e, err := st.OutboxJob(t.Context(), id); err != nil || e == nil {
			t.Fatalf("job %s of %s is not in the outbox (%v): deleted before a replica had it", id, other, err)
		}
	}
	replica.Resume()
	// The kept rows come back when their lease ends (10 s).
	waitUntil(t, "the rows of "+other+" to be relayed again and deleted", func() bool {
		_, _ = relay.RelayOnce(t.Context())
		return backlog(t, st) == 0
	})
	for q, want := range map[string]int64{"default": 20, other: 20} {
		if n := nodes.Client().LLen(t.Context(), rdb.PendingKey(q)).Val(); n != want {
			t.Fatalf("queue %s holds %d jobs, want %d", q, n, want)
		}
	}
}

// The write a Cluster failover loses: the replica of queue default's master
// is paused, so the jobs relayed to that master never reach it; the master
// dies and the replica, resumed, takes over without them. The relay kept
// their rows (no replica acknowledged them), while it deleted those of a
// queue on another master, whose replica has them; it relays the kept rows
// again: none is lost, and each is queued once.
func TestRelayClusterKeepsRowsPerMaster(t *testing.T) {
	nodes := redistest.StartCluster(t, 3, redistest.WithReplicas(), redistest.NodeTimeout(2*time.Second))
	master := nodes.Server(nodes.NodeOf(rdb.PendingKey("default")))
	replica := nodes.ReplicaOf(master)
	st, reg := outboxOf(t, 0)
	other := otherQueue(t, nodes, reg, "default")
	const n = 20
	ids := addJobs(t, st, reg, "default", n)
	addJobs(t, st, reg, other, n)

	// Paused, the replica would still find the master's writes in its
	// socket's buffer when it resumes; the master dropping it (after
	// repl-timeout) makes sure the writes never reach it.
	if err := master.Client().ConfigSet(t.Context(), "repl-timeout", "2").Err(); err != nil {
		t.Fatal(err)
	}
	replica.Pause()
	waitUntil(t, "the master to drop the paused replica", func() bool {
		v, _ := master.Client().Info(t.Context(), "replication").Result()
		return strings.Contains(v, "connected_slaves:0")
	})

	cc := nodes.Client()
	relay := outbox.NewRelay(st, queue.NewClient(reg, cc), quiet())
	relay.WaitForReplica(cc, 200*time.Millisecond, false)
	if moved, err := relay.RelayOnce(t.Context()); err != nil || moved != 2*n {
		t.Fatalf("relayed %d (%v), want %d", moved, err, 2*n)
	}
	if got := master.Client().LLen(t.Context(), rdb.PendingKey("default")).Val(); got != n {
		t.Fatalf("%d jobs in the master, want %d", got, n)
	}
	if got := backlog(t, st); got != n {
		t.Fatalf("outbox holds %d, want the %d of queue default kept and those of %s deleted", got, n, other)
	}

	master.Kill()
	replica.Resume()
	// Still a replica, so nothing but replication writes to it: the jobs
	// are not there. Promoted, it would lose them without the outbox.
	if got := replicaLen(t, replica.Client(), rdb.PendingKey("default")); got != 0 {
		t.Fatalf("the replica holds %d of the jobs: the write was not lost, the test proves nothing", got)
	}
	nodes.WaitFailover(replica, 40*time.Second)
	// The old master comes back, as a replica of the new one.
	master.Restart()
	waitUntil(t, "the rows to be relayed again and deleted", func() bool {
		_, _ = relay.RelayOnce(t.Context())
		return backlog(t, st) == 0
	})
	queued, err := replica.Client().LRange(t.Context(), rdb.PendingKey("default"), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(queued)
	slices.Sort(ids)
	if !slices.Equal(queued, ids) {
		t.Fatalf("the new master holds %d jobs of queue default, want the %d relayed, each once:\n%v\n%v", len(queued), n, queued, ids)
	}
	if got := cc.LLen(t.Context(), rdb.PendingKey(other)).Val(); got != n {
		t.Fatalf("queue %s holds %d jobs, want %d", other, got, n)
	}
}

// replicaLen is LLEN key read on a Cluster replica (READONLY, on the same
// connection).
func replicaLen(t *testing.T, c *redis.Client, key string) int64 {
	t.Helper()
	var n *redis.IntCmd
	if _, err := c.Pipelined(t.Context(), func(p redis.Pipeliner) error {
		p.ReadOnly(t.Context())
		n = p.LLen(t.Context(), key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n.Val()
}
