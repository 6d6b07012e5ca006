package outbox

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/queue"
	"github.com/errandhq/errand/internal/rdb"
	"github.com/redis/go-redis/v9"
)

// replicaCheck is how often the relay asks Redis whether it has a replica
// (INFO replication): not per batch, and soon enough after a failover.
const replicaCheck = 5 * time.Second

// replicaWait makes the relay keep outbox rows until a replica has their jobs,
// so a failover to that replica loses none of them.
type replicaWait struct {
	rdb     redis.UniversalClient
	timeout time.Duration
	always  bool // wait even with no replica connected
	cluster bool // wait per master (nodes.go)

	mu       sync.Mutex
	checked  time.Time
	replicas bool
	warned   time.Time
	nodes    map[string]nodeCheck // per Cluster master address
}

// WaitForReplica makes the relay delete outbox rows only once a replica of
// rdb has acknowledged their jobs, waiting up to timeout per batch (WAIT 1);
// rows not acknowledged stay and are relayed again when their lease ends,
// and the job's id refuses the duplicate. A standalone master without
// connected replicas is not waited for, unless always: under Sentinel a
// failover may promote a replica that is disconnected now, and it would not
// have the jobs. On a Redis Cluster (rdb a *redis.ClusterClient) each master
// that took jobs is waited for on its own, and a row is deleted once the
// master of its queue confirmed; a master the cluster gives no replica is
// not waited for, one whose replica is down is (the cluster may promote
// that replica when the master fails). Call before Run.
func (r *Relay) WaitForReplica(rdb redis.UniversalClient, timeout time.Duration, always bool) {
	if timeout > 0 {
		_, cluster := rdb.(*redis.ClusterClient)
		r.replica = &replicaWait{rdb: rdb, timeout: timeout, always: always, cluster: cluster}
	}
}

// enqueue writes batch and tells, per row, whether it may be deleted.
func (r *Relay) enqueue(ctx context.Context, batch []job.Envelope) ([]error, []bool) {
	confirmed := make([]bool, len(batch))
	all := func(ok bool) []bool {
		for i := range confirmed {
			confirmed[i] = ok
		}
		return confirmed
	}
	switch {
	case r.replica == nil:
		return r.client.EnqueueMany(ctx, batch), all(true)
	case r.replica.cluster:
		errs := r.client.EnqueueWith(batch, func(c *rdb.RDB, ts []rdb.Task, at []int) []error {
			written, ok := c.EnqueueManyWaitNodes(ctx, ts, r.replica.timeout, r.replica.nodeHasReplica)
			for k, i := range at {
				confirmed[i] = ok[k]
			}
			return written
		})
		var queues []string
		for i, ok := range confirmed {
			written := errs[i] == nil || errors.Is(errs[i], queue.ErrDuplicate)
			if !ok && written && !slices.Contains(queues, batch[i].Queue) {
				queues = append(queues, batch[i].Queue)
			}
		}
		if len(queues) > 0 && r.replica.warn() {
			r.log.Warn("outbox relay: no replica of their Cluster master acknowledged the jobs within redis.replica_wait; they run, and stay in the outbox until a replica has them (relayed again when their lease ends, refused as duplicates)",
				"queues", strings.Join(queues, ","), "replica_wait", r.replica.timeout.String())
		}
		return errs, confirmed
	case !r.replica.hasReplica(ctx):
		return r.client.EnqueueMany(ctx, batch), all(true)
	}
	var acked int64
	errs := r.client.EnqueueWith(batch, func(c *rdb.RDB, ts []rdb.Task, _ []int) []error {
		var written []error
		written, acked = c.EnqueueManyWait(ctx, ts, r.replica.timeout)
		return written
	})
	if acked > 0 {
		return errs, all(true)
	}
	if r.replica.warn() {
		r.log.Warn("outbox relay: no replica acknowledged the jobs within redis.replica_wait; they run, and stay in the outbox until a replica has them (relayed again when their lease ends, refused as duplicates)",
			"jobs", len(batch), "replica_wait", r.replica.timeout.String())
	}
	return errs, all(false)
}

// warn tells whether to log a batch no replica acknowledged: once every
// replicaCheck, since every batch is in that case while no replica is
// connected.
func (w *replicaWait) warn() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if time.Since(w.warned) < replicaCheck {
		return false
	}
	w.warned = time.Now()
	return true
}

// hasReplica reads INFO replication at most every replicaCheck. Until it
// knows, or when Redis does not answer, it assumes a replica: waiting in
// vain costs a relay round, not waiting may cost the jobs.
func (w *replicaWait) hasReplica(ctx context.Context) bool {
	if w.always {
		return true
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.checked.IsZero() && time.Since(w.checked) < replicaCheck {
		return w.replicas
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	info, err := w.rdb.Info(ctx, "replication").Result()
	if err != nil {
		return true
	}
	w.checked, w.replicas = time.Now(), connectedReplicas(info) > 0
	return w.replicas
}

// connectedReplicas reads connected_slaves from INFO replication.
func connectedReplicas(info string) int {
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "connected_slaves:"); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}
