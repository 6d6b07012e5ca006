package redistest

import (
	"context"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Nodes is a real Redis Cluster of several masters, each a redis-server
// child process of its own, that split the 16384 hash slots between them as
// `redis-cli --cluster create` splits them. Unlike a cluster of one node
// (Cluster), a client must follow MOVED answers and route every key to the
// node that serves it, so it proves that code works when its keys live on
// different machines.
type Nodes struct {
	tb      testing.TB
	servers []*Server // the masters
	// replicas maps a master to its replica (WithReplicas, AddReplica).
	replicas    map[*Server]*Server
	nodeTimeout time.Duration

	mu     sync.Mutex
	client *redis.ClusterClient
}

// clusterTimeout bounds forming the cluster: the slot assignment, the nodes
// meeting over their buses and every node agreeing the cluster is ok.
const clusterTimeout = 30 * time.Second

// StartCluster starts masters redis-servers in cluster mode on free loopback
// ports (their bus ports free too), joins them into one cluster with
// `redis-cli --cluster create` and no replicas (WithReplicas: one each),
// and waits until every node says cluster_state:ok and every replica is in
// sync. The servers are killed when the test ends. It fails the test if
// redis-server or redis-cli is not installed.
func StartCluster(tb testing.TB, masters int, opts ...ClusterOption) *Nodes {
	tb.Helper()
	if masters < 3 {
		tb.Fatalf("redistest: StartCluster(%d): redis-cli --cluster create needs at least 3 masters", masters)
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		tb.Fatalf("redistest: redis-cli not found on PATH (%v); run scripts/test.sh, which installs it", err)
	}
	var co clusterOptions
	for _, o := range opts {
		o(&co)
	}
	total, replicas := masters, "0"
	if co.replicas {
		total, replicas = 2*masters, "1"
	}
	n := &Nodes{tb: tb, nodeTimeout: co.nodeTimeout}
	tb.Cleanup(n.cleanup) // runs after the servers are killed; closing needs none of them
	var all []*Server
	addrs := make([]string, total)
	for i := range total {
		all = append(all, Start(tb, Cluster(), func(o *options) { o.member, o.nodeTimeout = true, co.nodeTimeout }))
		addrs[i] = all[i].Addr()
	}

	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", replicas, "--cluster-yes")
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		tb.Fatalf("redistest: redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	for _, s := range all {
		if err := s.waitClusterOK(ctx, total); err != nil {
			tb.Fatalf("redistest: %s: %v\n%s", s.Addr(), err, s.logTail())
		}
	}
	if !co.replicas {
		n.servers = all
		return n
	}
	n.sortRoles(ctx, all)
	return n
}

// waitClusterOK polls CLUSTER INFO until the node knows every master and
// says the cluster is ok: only then does every node route every slot.
func (s *Server) waitClusterOK(ctx context.Context, masters int) error {
	c := s.newClient(noRetries)
	defer c.Close()
	want := fmt.Sprintf("cluster_known_nodes:%d\r", masters)
	for {
		in, err := c.ClusterInfo(ctx).Result()
		if err == nil && strings.Contains(in, "cluster_state:ok") && strings.Contains(in, want) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster not ok within %s: %v\n%s", clusterTimeout, err, in)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Servers are the cluster's masters as started, in the order of their slot
// ranges (their replicas: ReplicaOf).
func (n *Nodes) Servers() []*Server { return n.servers }

// Addrs are the nodes' host:port addresses: the seeds a client is given.
func (n *Nodes) Addrs() []string {
	addrs := make([]string, len(n.servers))
	for i, s := range n.servers {
		addrs[i] = s.Addr()
	}
	return addrs
}

// Client returns a go-redis cluster client seeded with every node. It is
// shared by every call and closed when the test ends.
func (n *Nodes) Client() *redis.ClusterClient {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.client == nil {
		n.client = redis.NewClusterClient(&redis.ClusterOptions{
			Addrs:                 n.Addrs(),
			DisableIdentity:       true, // CLIENT SETINFO is unknown before Redis 7.2
			DialTimeout:           time.Second,
			ContextTimeoutEnabled: true,
			ReadTimeout:           5 * time.Second,
			WriteTimeout:          5 * time.Second,
		})
	}
	return n.client
}

// NodeOf is the address of the node that serves key, as the cluster itself
// says (CLUSTER SLOTS), not as the client assumes.
func (n *Nodes) NodeOf(key string) string {
	n.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	//lint:ignore SA1019 CLUSTER SLOTS answers on every Redis errand supports (6.2+); CLUSTER SHARDS needs 7.0
	slots, err := n.servers[0].Client().ClusterSlots(ctx).Result()
	if err != nil {
		n.tb.Fatalf("redistest: CLUSTER SLOTS: %v", err)
	}
	slot := KeySlot(key)
	for _, r := range slots {
		if r.Start <= slot && slot <= r.End && len(r.Nodes) > 0 {
			return r.Nodes[0].Addr
		}
	}
	n.tb.Fatalf("redistest: no node serves slot %d of %q", slot, key)
	return ""
}

// Spread maps each node's address to the keys of keys it serves, each
// node's list sorted: how a set of keys is spread over the cluster.
func (n *Nodes) Spread(keys ...string) map[string][]string {
	n.tb.Helper()
	out := map[string][]string{}
	for _, k := range keys {
		addr := n.NodeOf(k)
		out[addr] = append(out[addr], k)
	}
	for _, ks := range out {
		sort.Strings(ks)
	}
	return out
}

func (n *Nodes) cleanup() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.client != nil {
		_ = n.client.Close()
		n.client = nil
	}
}
