package rdb

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// WaitsFor tells whether to WAIT for a replica of the Cluster master node:
// false for a master the cluster gives no replica.
type WaitsFor func(ctx context.Context, node *redis.Client) bool

// EnqueueManyWaitNodes is EnqueueManyWait for a Redis Cluster client. WAIT
// is keyless and counts only the writes of the connection and node it is
// sent on, so the jobs are sent node by node: each master's jobs, then an
// INCR of ReplicaKey for each of its queues, then WAIT 1 timeout, in one
// pipeline on one connection of that master (the nodes in parallel). The
// INCR is replicated after every job, so a replica that has it has them.
// A master waits says not to wait for is not asked to WAIT.
//
// It returns one error per job (nil, ErrDuplicate, or why it failed) and,
// per job, whether its node confirmed it: a replica acknowledged, or the
// node was not to be waited for. With a client that is not a Cluster
// client it is EnqueueManyWait, every job confirmed alike.
func (r *RDB) EnqueueManyWaitNodes(ctx context.Context, ts []Task, timeout time.Duration, waits WaitsFor) ([]error, []bool) {
	confirmed := make([]bool, len(ts))
	cc, ok := r.c.(*redis.ClusterClient)
	if !ok || timeout <= 0 {
		errs, acked := r.EnqueueManyWait(ctx, ts, timeout)
		for i := range confirmed {
			confirmed[i] = timeout <= 0 || acked > 0
		}
		return errs, confirmed
	}
	errs := make([]error, len(ts))
	// asynq's set of queues belongs to no queue's slot: the cluster client
	// routes it to its node, beside the jobs (see enqueueMany).
	var queues []string
	for _, t := range ts {
		if !slices.Contains(queues, t.Queue) {
			queues = append(queues, t.Queue)
		}
	}
	if err := cc.SAdd(ctx, AllQueuesKey, anys(queues)...).Err(); err == nil {
		for _, q := range queues {
			r.known.Store(q, true)
		}
	}

	type nodeBatch struct {
		client *redis.Client
		queues []string
		at     []int // ts index of each job
	}
	var batches []*nodeBatch
	byAddr := map[string]*nodeBatch{}
	reload := false
	for _, q := range queues {
		node, err := cc.MasterForKey(ctx, QueueKeyPrefix(q))
		if err != nil {
			for i, t := range ts {
				if t.Queue == q {
					errs[i] = fmt.Errorf("enqueue %s %s: the node of queue %s: %w", t.Type, t.ID, q, err)
				}
			}
			reload = true
			continue
		}
		b := byAddr[node.Options().Addr]
		if b == nil {
			b = &nodeBatch{client: node}
			byAddr[node.Options().Addr] = b
			batches = append(batches, b)
		}
		b.queues = append(b.queues, q)
		for i, t := range ts {
			if t.Queue == q {
				b.at = append(b.at, i)
			}
		}
	}

	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, b := range batches {
		wg.Go(func() {
			sub := make([]Task, len(b.at))
			for k, i := range b.at {
				sub[k] = ts[i]
			}
			node := &RDB{c: b.client}
			var subErrs []error
			ok := true
			if waits != nil && !waits(ctx, b.client) {
				subErrs = node.enqueueNode(ctx, sub)
			} else {
				var acked int64
				subErrs, acked = node.enqueueNodeWait(ctx, sub, b.queues, timeout)
				ok = acked > 0
			}
			mu.Lock()
			defer mu.Unlock()
			for k, i := range b.at {
				errs[i], confirmed[i] = subErrs[k], ok
				if subErrs[k] != nil && !errors.Is(subErrs[k], ErrDuplicate) {
					reload = true
				}
			}
		})
	}
	wg.Wait()
	if reload {
		// A node that refused (MOVED after a failover or resharding) or did
		// not answer: the cluster client learns the new layout before the
		// rows come back.
		cc.ReloadState(ctx)
	}
	return errs, confirmed
}

// enqueueNode writes ts, all of queues one Cluster master serves, on that
// master's client (r.c), without the SADD the cluster client sent.
func (r *RDB) enqueueNode(ctx context.Context, ts []Task, after ...func(redis.Pipeliner)) []error {
	now := time.Now()
	calls := make([]*evalCall, len(ts))
	for i, t := range ts {
		calls[i] = r.enqueueCall(t, now)
	}
	r.runPipelined(ctx, calls, nil, after...)
	return enqueued(ts, calls)
}

// enqueueNodeWait is enqueueNode ending each round trip with an INCR of
// every queue's ReplicaKey and WAIT 1 timeout, and returns how many
// replicas acknowledged (the lower count of a NOSCRIPT retry's two round
// trips; 0 when an INCR or the WAIT failed).
func (r *RDB) enqueueNodeWait(ctx context.Context, ts []Task, queues []string, timeout time.Duration) ([]error, int64) {
	var marks []*redis.IntCmd
	var waits []*redis.Cmd
	errs := r.enqueueNode(ctx, ts, func(p redis.Pipeliner) {
		for _, q := range queues {
			marks = append(marks, p.Incr(ctx, ReplicaKey(q)))
		}
		waits = append(waits, p.Do(ctx, "wait", 1, timeout.Milliseconds()))
	})
	for _, m := range marks {
		if m.Err() != nil {
			return errs, 0
		}
	}
	acked := int64(-1)
	for _, w := range waits {
		n, err := w.Int64()
		if err != nil {
			return errs, 0
		}
		if acked < 0 || n < acked {
			acked = n
		}
	}
	return errs, max(acked, 0)
}
