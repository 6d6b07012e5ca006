package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/rdb"
	"github.com/errandhq/errand/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// The write a Cluster failover loses: the replica of the master serving the
// emails queue is paused, so the jobs relayed to that master never reach
// it; the master dies and the replica, resumed, takes over without them.
// The relay kept their rows (no replica of that master acknowledged them)
// and relays them again: none is lost, and each runs once.
func TestClusterFailoverLosesNoUnreplicatedJob(t *testing.T) {
	t.Parallel()
	nodes := redistest.StartCluster(t, 3, redistest.WithReplicas(), redistest.NodeTimeout(2*time.Second))
	s := startStack(t, stackOptions{cluster: nodes, noWorker: true, toml: welcomeAtOnce})
	master := nodes.Server(nodes.NodeOf(rdb.PendingKey("emails")))
	replica := nodes.ReplicaOf(master)
	// A registration queues a job on each of emails, notifications and crm:
	// those whose queue is on that master are the ones at stake.
	var atStake []string
	for _, q := range []string{"emails", "notifications", "crm"} {
		if nodes.NodeOf(rdb.PendingKey(q)) == master.Addr() {
			atStake = append(atStake, q)
		}
	}
	t.Logf("master %s serves %v", master.Addr(), atStake)

	// Paused, the replica would still find the master's writes in its
	// socket's buffer when it resumes; the master dropping it (after
	// repl-timeout) makes sure the writes never reach it.
	if err := master.Client().ConfigSet(t.Context(), "repl-timeout", "2").Err(); err != nil {
		t.Fatal(err)
	}
	replica.Pause()
	s.waitFor(20*time.Second, "the master to drop the paused replica", func() bool {
		v, _ := master.Client().Info(t.Context(), "replication").Result()
		return strings.Contains(v, "connected_slaves:0")
	})
	const n = 10
	emails := make([]string, n)
	for i := range n {
		emails[i] = fmt.Sprintf("lost%d@shop.test", i)
		if code, body := s.post("/api/users", registration(emails[i]), nil); code != http.StatusCreated {
			t.Fatalf("registration %d: %d %v", i, code, body)
		}
	}
	cc := nodes.Client()
	s.waitFor(15*time.Second, "the jobs in the cluster", func() bool {
		total := int64(0)
		for _, q := range []string{"emails", "notifications", "crm"} {
			total += cc.LLen(t.Context(), rdb.PendingKey(q)).Val()
		}
		return total >= 3*n
	})
	s.waitFor(15*time.Second, "the relay to report no replica acknowledged them", func() bool {
		return len(s.serve.lines("no replica of their Cluster master acknowledged")) > 0
	})
	// Only the rows of the queues on that master are kept: the other
	// masters' replicas have theirs (the last may be between its enqueue
	// and its delete still).
	s.waitFor(15*time.Second, fmt.Sprintf("the outbox to hold the %d jobs of %v", n*len(atStake), atStake), func() bool {
		backlog, _, err := s.db().OutboxBacklog(t.Context())
		return err == nil && backlog == n*len(atStake)
	})

	master.Kill()
	replica.Resume()
	// Still a replica, so nothing but replication writes to it: the jobs
	// are not there. Promoted, it would lose them without the outbox.
	for _, q := range atStake {
		if got := replicaLLen(t, replica.Client(), rdb.PendingKey(q)); got != 0 {
			t.Fatalf("the replica holds %d jobs of %s: the write was not lost, the test proves nothing", got, q)
		}
	}
	nodes.WaitFailover(replica, 40*time.Second)
	// The old master comes back, as a replica of the new one.
	master.Restart()
	s.startWorker(s.worker)
	s.waitFor(40*time.Second, "every side effect", func() bool {
		mails, reps, contacts := s.sideEffects()
		for _, e := range emails {
			if mails[e] == 0 || reps[e] == 0 || contacts[e] == 0 {
				return false
			}
		}
		return true
	})
	time.Sleep(time.Second)
	mails, reps, contacts := s.sideEffects()
	for _, e := range emails {
		if mails[e] != 1 || reps[e] != 1 || contacts[e] != 1 {
			t.Fatalf("%s: %d welcome emails, %d rep messages, %d contacts; want one each", e, mails[e], reps[e], contacts[e])
		}
	}
	s.waitFor(20*time.Second, "the outbox to empty", func() bool {
		backlog, _, err := s.db().OutboxBacklog(t.Context())
		return err == nil && backlog == 0
	})
	t.Logf("%d jobs of %v on the master only, master killed, paused replica promoted: all relayed again and run once", n*len(atStake), atStake)
}

// replicaLLen is LLEN key read on a Cluster replica (READONLY, on the same
// connection).
func replicaLLen(t *testing.T, c *redis.Client, key string) int64 {
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
