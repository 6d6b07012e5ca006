package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// The deployments of Redis errand runs on (redis.mode).
const (
	RedisStandalone = "standalone"
	RedisSentinel   = "sentinel"
	RedisCluster    = "cluster"
)

// Redis is the [redis] section: where the jobs live.
type Redis struct {
	// Mode is standalone (one server at Addr), sentinel (the master the
	// sentinels at Addrs name MasterName) or cluster (Addrs are seeds).
	Mode string `koanf:"mode"`
	Addr string `koanf:"addr"`
	// Addrs are the sentinels (sentinel) or some of the cluster's nodes
	// (cluster), host:port each.
	Addrs      []string `koanf:"addrs"`
	MasterName string   `koanf:"master_name"`
	// Username is the Redis ACL user (Redis 6+); empty = the default user.
	Username string `koanf:"username"`
	Password string `koanf:"password"`
	// SentinelPassword is the sentinels' own requirepass, when they have one.
	SentinelPassword string `koanf:"sentinel_password"`
	DB               int    `koanf:"db"`
	// ReplicaWait is how long the outbox relay waits for a replica to confirm
	// the jobs it wrote (WAIT 1) before it deletes them from the outbox; 0
	// deletes at once. Without a connected replica (standalone) or any
	// replica (a Cluster master) it does not wait.
	ReplicaWait time.Duration `koanf:"replica_wait"`
	TLS         bool          `koanf:"tls"`
	// TLSCAFile names a PEM file of CAs to trust for Redis's certificate, on
	// top of the system's (a private CA, a managed Redis).
	TLSCAFile string `koanf:"tls_ca_file"`
	// TLSCertFile and TLSKeyFile are errand's client certificate, for a
	// Redis that asks for one (tls-auth-clients).
	TLSCertFile string `koanf:"tls_cert_file"`
	TLSKeyFile  string `koanf:"tls_key_file"`
}

// MaxReplicaWait bounds redis.replica_wait: the WAIT shares a round trip
// with the jobs, which must end within go-redis's read timeout (3 s).
const MaxReplicaWait = 2 * time.Second

// DefaultRedis is one local server.
func DefaultRedis() Redis {
	return Redis{Mode: RedisStandalone, Addr: "127.0.0.1:6379", Addrs: []string{}, ReplicaWait: 500 * time.Millisecond}
}

// Where names the Redis errand connects to, for messages: the address, the
// sentinels and master name, or the cluster's seeds.
func (r Redis) Where() string {
	switch r.Mode {
	case RedisSentinel:
		return fmt.Sprintf("master %q of the sentinels %v (redis.master_name, redis.addrs)", r.MasterName, r.Addrs)
	case RedisCluster:
		return fmt.Sprintf("the cluster seeds %v (redis.addrs)", r.Addrs)
	}
	return r.Addr
}

func (r Redis) validate() []string {
	var errs []string
	bad := func(key, format string, args ...any) {
		errs = append(errs, key+": "+fmt.Sprintf(format, args...))
	}
	switch r.Mode {
	case RedisStandalone:
		if r.Addr == "" {
			bad("redis.addr", "must not be empty")
		}
		if len(r.Addrs) > 0 {
			bad("redis.addrs", "is set but redis.mode is standalone, which uses redis.addr: set redis.mode to sentinel or cluster")
		}
	case RedisSentinel:
		if r.MasterName == "" {
			bad("redis.master_name", "must name the master the sentinels monitor in sentinel mode")
		}
		if len(r.Addrs) == 0 {
			bad("redis.addrs", "must list the sentinels (host:port) in sentinel mode")
		}
	case RedisCluster:
		if len(r.Addrs) == 0 {
			bad("redis.addrs", "must list at least one node of the cluster (host:port) in cluster mode")
		}
		if r.DB != 0 {
			bad("redis.db", "must be 0 in cluster mode: Redis Cluster has only database 0 (got %d)", r.DB)
		}
	default:
		bad("redis.mode", "must be standalone, sentinel or cluster (got %q)", r.Mode)
	}
	if r.MasterName != "" && r.Mode != RedisSentinel {
		bad("redis.master_name", "is only used in sentinel mode (redis.mode is %q)", r.Mode)
	}
	for _, a := range r.Addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			bad("redis.addrs", "%q is not host:port", a)
		}
	}
	if r.DB < 0 {
		bad("redis.db", "must not be negative (got %d)", r.DB)
	}
	if r.ReplicaWait < 0 || r.ReplicaWait > MaxReplicaWait {
		bad("redis.replica_wait", "must be 0 (off) to %s (got %s)", MaxReplicaWait, r.ReplicaWait)
	}
	if _, err := r.RedisTLS(); err != nil {
		errs = append(errs, err.Error())
	}
	return errs
}

// RedisTLS returns the TLS configuration for Redis, or nil without TLS.
// Standalone checks the certificate against redis.addr's host; sentinel and
// cluster against each node's host as it is dialed.
func (r Redis) RedisTLS() (*tls.Config, error) {
	if !r.TLS {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if r.Mode == RedisStandalone || r.Mode == "" {
		host, _, err := net.SplitHostPort(r.Addr)
		if err != nil {
			host = r.Addr
		}
		c.ServerName = host
	}
	if r.TLSCAFile != "" {
		pem, err := os.ReadFile(r.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("redis.tls_ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("redis.tls_ca_file: %s holds no PEM certificate", r.TLSCAFile)
		}
		c.RootCAs = pool
	}
	switch {
	case r.TLSCertFile != "" && r.TLSKeyFile != "":
		pair, err := tls.LoadX509KeyPair(r.TLSCertFile, r.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("redis.tls_cert_file/tls_key_file: %w", err)
		}
		c.Certificates = []tls.Certificate{pair}
	case r.TLSCertFile != "" || r.TLSKeyFile != "":
		return nil, errors.New("redis.tls_cert_file and redis.tls_key_file: give both or neither")
	}
	return c, nil
}
