package redistest

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster starts the server in Redis Cluster mode, as a cluster of one node
// that serves all 16384 hash slots. It refuses what a real cluster refuses —
// a command or script whose keys are in two slots answers CROSSSLOT — so code
// meant for Redis Cluster is tested against the rules, not a description of
// them. ClusterClient connects to it as to any cluster.
func Cluster() Option {
	return func(o *options) { o.cluster = true }
}

func (s *Server) clusterArgs() []string {
	if !s.opts.cluster {
		return nil
	}
	timeout := 5 * time.Second
	if s.opts.nodeTimeout > 0 {
		timeout = s.opts.nodeTimeout
	}
	// The bus port is given, not port+10000, which may be out of range.
	return []string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
		"--cluster-port", strconv.Itoa(s.bus), "--cluster-node-timeout", strconv.FormatInt(timeout.Milliseconds(), 10)}
}

// serveAllSlots gives the node every hash slot (the first start; nodes.conf
// keeps them over a Restart) and waits until the cluster is ok.
func (s *Server) serveAllSlots() error {
	if s.opts.member {
		return nil
	}
	c := s.newClient(noRetries)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	info := func() (string, error) { return c.ClusterInfo(ctx).Result() }
	in, err := info()
	if err != nil {
		return fmt.Errorf("CLUSTER INFO: %w", err)
	}
	if strings.Contains(in, "cluster_slots_assigned:0\r") {
		if err := c.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err(); err != nil {
			return fmt.Errorf("CLUSTER ADDSLOTSRANGE: %w", err)
		}
	}
	for !strings.Contains(in, "cluster_state:ok") {
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster not ok within %s: %s", startTimeout, in)
		case <-time.After(20 * time.Millisecond):
		}
		if in, err = info(); err != nil {
			return fmt.Errorf("CLUSTER INFO: %w", err)
		}
	}
	return nil
}

// ClusterClient returns a go-redis cluster client for a server started with
// Cluster. It is shared by every call and closed when the test ends.
func (s *Server) ClusterClient() *redis.ClusterClient {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.opts.cluster {
		s.tb.Fatal("redistest: ClusterClient needs a server started with redistest.Cluster()")
	}
	if s.cluster == nil {
		s.cluster = redis.NewClusterClient(&redis.ClusterOptions{
			Addrs:                 []string{s.Addr()},
			Username:              s.Username(),
			Password:              s.Password(),
			DisableIdentity:       true, // CLIENT SETINFO is unknown before Redis 7.2
			DialTimeout:           time.Second,
			ContextTimeoutEnabled: true,
			ReadTimeout:           5 * time.Second,
			WriteTimeout:          5 * time.Second,
		})
	}
	return s.cluster
}

// Ring returns a go-redis Ring of one shard, this server: a client of
// another kind than *redis.Client on a standalone server, for code that must
// work with any redis.UniversalClient. It is shared by every call and closed
// when the test ends.
func (s *Server) Ring() *redis.Ring {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ring == nil {
		s.ring = redis.NewRing(&redis.RingOptions{
			Addrs:           map[string]string{"only": s.Addr()},
			Username:        s.Username(),
			Password:        s.Password(),
			TLSConfig:       s.TLSConfig(),
			DisableIdentity: true,
			DialTimeout:     time.Second,
			ReadTimeout:     5 * time.Second,
			WriteTimeout:    5 * time.Second,
		})
	}
	return s.ring
}
