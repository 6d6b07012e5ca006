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

	mu       sync.Mutex
	checked  time.Time
	replicas bool
}

// WaitForReplica makes the relay delete outbox rows only once a replica of
// rdb (a standalone or Sentinel-managed master, not a Cluster) has
// acknowledged their jobs, waiting up to timeout per batch (WAIT 1); rows
// not acknowledged stay and are relayed again when their lease ends, and
// the job's id refuses the duplicate. A master without connected replicas
// is not waited for. Call before Run.
func (r *Relay) WaitForReplica(rdb redis.UniversalClient, timeout time.Duration) {
	if timeout > 0 {
		r.replica = &replicaWait{rdb: rdb, timeout: timeout}
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
	for _, err := range errs {
		if err == nil {
			r.log.Warn("outbox relay: no replica acknowledged the jobs within redis.replica_wait; they stay in the outbox and are relayed again when their lease ends",
				"jobs", len(batch), "replica_wait", r.replica.timeout.String())
			break
		}
	}
	return errs, false
}

// hasReplica reads INFO replication at most every replicaCheck. Until it
// knows, or when Redis does not answer, it assumes a replica: waiting in
// vain costs a relay round, not waiting may cost the jobs.
func (w *replicaWait) hasReplica(ctx context.Context) bool {
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
