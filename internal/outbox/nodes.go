package outbox

import (
	"context"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// nodeCheck is what the relay last learnt of one Cluster master.
type nodeCheck struct {
	at       time.Time
	replicas bool
}

// nodeHasReplica tells whether the Cluster master node has a replica to wait
// for, reading CLUSTER NODES on it at most every replicaCheck. Every replica
// the cluster assigns the master counts, connected or not, even one the
// cluster marks failed: Redis Cluster may still promote it when the master
// fails, with only what it had received, so the rows wait for it. Until it
// knows, or when the node does not answer, it assumes a replica, as
// hasReplica does.
func (w *replicaWait) nodeHasReplica(ctx context.Context, node *redis.Client) bool {
	addr := node.Options().Addr
	w.mu.Lock()
	c, ok := w.nodes[addr]
	w.mu.Unlock()
	if ok && time.Since(c.at) < replicaCheck {
		return c.replicas
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var nodes *redis.StringCmd
	var info *redis.StringCmd
	if _, err := node.Pipelined(ctx, func(p redis.Pipeliner) error {
		nodes = p.ClusterNodes(ctx)
		info = p.Info(ctx, "replication")
		return nil
	}); err != nil {
		return true
	}
	// A replica connected to the master counts even before the master's
	// table of the cluster lists it (that comes by gossip, later).
	c = nodeCheck{at: time.Now(), replicas: assignedReplicas(nodes.Val()) > 0 || connectedReplicas(info.Val()) > 0}
	w.mu.Lock()
	if w.nodes == nil {
		w.nodes = map[string]nodeCheck{}
	}
	w.nodes[addr] = c
	w.mu.Unlock()
	return c.replicas
}

// assignedReplicas counts the replicas of the node that answered CLUSTER
// NODES (the line flagged "myself"): the lines whose master field is its id.
func assignedReplicas(nodes string) int {
	var self string
	lines := strings.Split(nodes, "\n")
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) >= 4 && strings.Contains(","+f[2]+",", ",myself,") {
			self = f[0]
		}
	}
	n := 0
	for _, l := range lines {
		if f := strings.Fields(l); self != "" && len(f) >= 4 && f[3] == self {
			n++
		}
	}
	return n
}
