package outbox

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/errandhq/errand/internal/job"
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

	mu       sync.Mutex
	checked  time.Time
	replicas bool
	warned   time.Time
}

// WaitForReplica makes the relay delete outbox rows only once a replica of
// rdb (a standalone or Sentinel-managed master, not a Cluster) has
// acknowledged their jobs, waiting up to timeout per batch (WAIT 1); rows
// not acknowledged stay and are relayed again when their lease ends, and
// the job's id refuses the duplicate. A master without connected replicas
// is not waited for, unless always: under Sentinel a failover may promote a
// replica that is disconnected now, and it would not have the jobs. Call
// before Run.
func (r *Relay) WaitForReplica(rdb redis.UniversalClient, timeout time.Duration, always bool) {
	if timeout > 0 {
		r.replica = &replicaWait{rdb: rdb, timeout: timeout, always: always}
	}
}

// enqueue writes batch and tells whether its rows may be deleted.
func (r *Relay) enqueue(ctx context.Context, batch []job.Envelope) ([]error, bool) {
	if r.replica == nil || !r.replica.hasReplica(ctx) {
		return r.client.EnqueueMany(ctx, batch), true
	}
	errs, acked := r.client.EnqueueManyWait(ctx, batch, r.replica.timeout)
	if acked > 0 {
		return errs, true
	}
	if r.replica.warn() {
		r.log.Warn("outbox relay: no replica acknowledged the jobs within redis.replica_wait; they run, and stay in the outbox until a replica has them (relayed again when their lease ends, refused as duplicates)",
			"jobs", len(batch), "replica_wait", r.replica.timeout.String())
	}
	return errs, false
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
