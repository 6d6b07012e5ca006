package redistest

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// ClusterOption configures StartCluster.
type ClusterOption func(*clusterOptions)

type clusterOptions struct {
	replicas    bool
	nodeTimeout time.Duration
}

// WithReplicas gives every master one replica (`--cluster-replicas 1`):
// twice as many servers, and a master that fails is replaced by its replica.
func WithReplicas() ClusterOption {
	return func(o *clusterOptions) { o.replicas = true }
}

// NodeTimeout sets cluster-node-timeout (5 s otherwise): how long a node may
// not answer before the cluster takes it for failed and, for a master with
// a replica, fails it over.
func NodeTimeout(d time.Duration) ClusterOption {
	return func(o *clusterOptions) { o.nodeTimeout = d }
}

// sortRoles finds, after `redis-cli --cluster create`, which servers it made
// masters and which replica follows which master, and waits until every
// replica is in sync with its master.
func (n *Nodes) sortRoles(ctx context.Context, all []*Server) {
	n.tb.Helper()
	byPort := map[string]*Server{}
	for _, s := range all {
		byPort[fmt.Sprint(s.port)] = s
	}
	n.replicas = map[*Server]*Server{}
	for _, s := range all {
		info, err := s.Client().Info(ctx, "replication").Result()
		if err != nil {
			n.tb.Fatalf("redistest: INFO replication on %s: %v", s.Addr(), err)
		}
		if field(info, "role") == "master" {
			n.servers = append(n.servers, s)
			continue
		}
		master := byPort[field(info, "master_port")]
		if master == nil {
			n.tb.Fatalf("redistest: replica %s follows no server of the cluster:\n%s", s.Addr(), info)
		}
		n.replicas[master] = s
	}
	for _, m := range n.servers {
		r := n.replicas[m]
		if r == nil {
			n.tb.Fatalf("redistest: master %s has no replica", m.Addr())
		}
		n.waitReplica(ctx, m, r)
	}
}

// waitReplica waits until replica r is in sync with master m and m's table
// of the cluster lists it.
func (n *Nodes) waitReplica(ctx context.Context, m, r *Server) {
	n.tb.Helper()
	// The master learns of its replica by gossip, after the replica
	// follows it: wait until its table of the cluster says so too.
	id, err := r.Client().ClusterMyID(ctx).Result()
	if err != nil {
		n.tb.Fatalf("redistest: CLUSTER MYID on %s: %v", r.Addr(), err)
	}
	for {
		nodes, err := m.Client().ClusterNodes(ctx).Result()
		if err == nil && listsReplica(nodes, id) {
			break
		}
		select {
		case <-ctx.Done():
			n.tb.Fatalf("redistest: master %s does not list its replica %s within %s: %v\n%s", m.Addr(), r.Addr(), clusterTimeout, err, nodes)
		case <-time.After(50 * time.Millisecond):
		}
	}
	for {
		info, err := r.Client().Info(ctx, "replication").Result()
		if err == nil && field(info, "master_link_status") == "up" {
			break
		}
		select {
		case <-ctx.Done():
			n.tb.Fatalf("redistest: replica %s not in sync with %s within %s: %v\n%s", r.Addr(), m.Addr(), clusterTimeout, err, info)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// AddReplica starts one more cluster node and makes it a replica of master,
// a master of the cluster that has none: a cluster where some masters have
// a replica and others do not. It returns when the replica is in sync.
func (n *Nodes) AddReplica(master *Server) *Server {
	n.tb.Helper()
	if n.replicas[master] != nil {
		n.tb.Fatalf("redistest: %s has a replica already", master.Addr())
	}
	r := Start(n.tb, Cluster(), func(o *options) { o.member, o.nodeTimeout = true, n.nodeTimeout })
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	id, err := master.Client().ClusterMyID(ctx).Result()
	if err != nil {
		n.tb.Fatalf("redistest: CLUSTER MYID on %s: %v", master.Addr(), err)
	}
	// The bus port is given: it is not port+10000 here (clusterArgs).
	if err := r.Client().Do(ctx, "CLUSTER", "MEET", "127.0.0.1", master.port, master.bus).Err(); err != nil {
		n.tb.Fatalf("redistest: CLUSTER MEET from %s: %v", r.Addr(), err)
	}
	// CLUSTER REPLICATE needs the master known to the new node first.
	for {
		nodes, err := r.Client().ClusterNodes(ctx).Result()
		if err == nil && strings.Contains(nodes, id+" ") {
			if err = r.Client().ClusterReplicate(ctx, id).Err(); err == nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			n.tb.Fatalf("redistest: %s cannot follow %s within %s: %v\n%s", r.Addr(), master.Addr(), clusterTimeout, err, nodes)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if n.replicas == nil {
		n.replicas = map[*Server]*Server{}
	}
	n.replicas[master] = r
	n.waitReplica(ctx, master, r)
	return r
}

// field reads "name:value" from an INFO answer.
func field(info, name string) string {
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v
		}
	}
	return ""
}

// ReplicaOf is master's replica (WithReplicas), nil if it has none.
func (n *Nodes) ReplicaOf(master *Server) *Server { return n.replicas[master] }

// Server is the server, master or replica, listening on addr.
func (n *Nodes) Server(addr string) *Server {
	n.tb.Helper()
	for _, s := range n.servers {
		if s.Addr() == addr {
			return s
		}
		if r := n.replicas[s]; r != nil && r.Addr() == addr {
			return r
		}
	}
	n.tb.Fatalf("redistest: no server of the cluster listens on %s", addr)
	return nil
}

// WaitFailover waits until replica, resumed after its master failed, is a
// master and every running node says the cluster is ok again.
func (n *Nodes) WaitFailover(replica *Server, timeout time.Duration) {
	n.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		info, err := replica.Client().Info(ctx, "replication").Result()
		if err == nil && field(info, "role") == "master" {
			ok := true
			for _, s := range append(n.servers, replica) {
				if !s.alive() {
					continue
				}
				in, err := s.Client().ClusterInfo(ctx).Result()
				ok = ok && err == nil && strings.Contains(in, "cluster_state:ok")
			}
			if ok {
				return
			}
		}
		select {
		case <-ctx.Done():
			n.tb.Fatalf("redistest: %s not promoted, or the cluster not ok, within %s: %v\n%s", replica.Addr(), timeout, err, replica.logTail())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (s *Server) alive() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running()
}

// listsReplica tells whether CLUSTER NODES shows node id as a replica.
func listsReplica(nodes, id string) bool {
	for line := range strings.SplitSeq(nodes, "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[0] == id && strings.Contains(f[2], "slave") && f[3] != "-" {
			return true
		}
	}
	return false
}
