package rdb

import "time"

// AsynqVersion is the asynq release whose private Redis layout this package
// mirrors: its key names (internal/base/base.go), its stored task message
// (internal/proto/asynq.proto) and its Lua scripts (internal/rdb/rdb.go).
// layout_test.go fails when go.mod names another version; see the upgrade
// checklist there.
const AsynqVersion = "v0.26.0"

// Every key of a queue carries the queue's name as its Redis Cluster hash
// tag, "{<queue>}", as asynq's do: all of a queue's keys live in one hash
// slot, so one script may touch any of them, and only them. No script touches
// two queues.
//
// The builders below are asynq's, by the same names, from base.go.

// QueueKeyPrefix is the start of every key of queue q: "asynq:{<q>}:".
func QueueKeyPrefix(q string) string { return "asynq:{" + q + "}:" }

// TaskKeyPrefix is the start of the task hashes of queue q. A script that
// must reach a task it learns of only as it runs (an id popped from a list)
// is given this prefix as a KEY and appends the id: the result has the
// prefix's hash tag, so it is in the slot the script was routed to.
func TaskKeyPrefix(q string) string { return QueueKeyPrefix(q) + "t:" }

// TaskKey is the hash holding task id of queue q: fields msg (the stored
// message, see internal/rdb/taskmsg), state, pending_since, and for grouped tasks
// group, for unique ones unique_key.
func TaskKey(q, id string) string { return TaskKeyPrefix(q) + id }

// PendingKey is queue q's list of task ids ready to run; the oldest is at the
// tail (LPUSH to add, RPOPLPUSH or LRANGE -n -1 to take).
func PendingKey(q string) string { return QueueKeyPrefix(q) + "pending" }

// ActiveKey is queue q's list of task ids being worked on.
func ActiveKey(q string) string { return QueueKeyPrefix(q) + "active" }

// LeaseKey is queue q's sorted set of active task ids scored by the Unix
// second their lease ends; asynq's recoverer retries a task whose lease ended
// more than 30 s ago.
func LeaseKey(q string) string { return QueueKeyPrefix(q) + "lease" }

// ScheduledKey is queue q's sorted set of delayed task ids scored by their due
// instant (see DueScore).
func ScheduledKey(q string) string { return QueueKeyPrefix(q) + "scheduled" }

// RetryKey is queue q's sorted set of failed task ids waiting to run again,
// scored by their due instant.
func RetryKey(q string) string { return QueueKeyPrefix(q) + "retry" }

// ArchivedKey is queue q's sorted set of task ids that failed for good
// (errand's failed list), scored by the Unix second they failed.
func ArchivedKey(q string) string { return QueueKeyPrefix(q) + "archived" }

// CompletedKey is queue q's sorted set of completed task ids kept for their
// retention, scored by the Unix second they expire.
func CompletedKey(q string) string { return QueueKeyPrefix(q) + "completed" }

// PausedKey exists while queue q is paused (asynq's Inspector.PauseQueue):
// nothing is taken from its pending list then.
func PausedKey(q string) string { return QueueKeyPrefix(q) + "paused" }

// ProcessedTotalKey counts the attempts queue q has finished, ever.
func ProcessedTotalKey(q string) string { return QueueKeyPrefix(q) + "processed" }

// FailedTotalKey counts the failed attempts of queue q, ever.
func FailedTotalKey(q string) string { return QueueKeyPrefix(q) + "failed" }

// ProcessedKey counts the attempts queue q finished on t's day (UTC); it
// expires statsTTL after its first count.
func ProcessedKey(q string, t time.Time) string {
	return QueueKeyPrefix(q) + "processed:" + day(t)
}

// FailedKey counts the failed attempts of queue q on t's day (UTC).
func FailedKey(q string, t time.Time) string {
	return QueueKeyPrefix(q) + "failed:" + day(t)
}

func day(t time.Time) string { return t.UTC().Format("2006-01-02") }

// GroupKeyPrefix is the start of queue q's group sets: asynq collects a
// group's tasks in "asynq:{<q>}:g:<group>" until its aggregator merges them
// (errand's escalation digest is such a group).
func GroupKeyPrefix(q string) string { return QueueKeyPrefix(q) + "g:" }

// AllQueuesKey is asynq's set of every queue's name, which its inspector, its
// dashboard and errand's `errand queues` list. It is the one key that belongs
// to no queue, so no script writes it: errand adds a queue's name with a
// plain SADD, once per queue per process, beside the script (enqueue.go).
const AllQueuesKey = "asynq:queues"

// OwnersKey is errand's hash of queue q's leased jobs: job id → the worker
// that holds the lease (see owner.go). asynq knows nothing of it; it is in the
// queue's hash slot, so the scripts that move a job check and clear it.
func OwnersKey(q string) string { return "errand:{" + q + "}:owners" }

// WorkersKey is errand's sorted set of the workers that held leases on queue
// q, scored by the Unix second each was last seen (a fetch or a lease
// renewal): where a recoverer finds the workers it may know to be dead.
func WorkersKey(q string) string { return "errand:{" + q + "}:workers" }

// Keys and channels of errand's own.
const (
	// WakeChannel carries wake-ups to idle workers (see wake.go). A Pub/Sub
	// channel is not a key: it has no hash slot, and PUBLISH from a script
	// is allowed on Redis Cluster, where the message reaches subscribers on
	// every node. So every queue shares this one channel; a per-queue one
	// would cost a subscription per queue for nothing. (Sharded Pub/Sub,
	// SPUBLISH, would bind it to a slot; errand does not use it.)
	WakeChannel = "errand:wake"

	// ReplicaChannel is where EnqueueManyWait publishes before WAIT: a
	// PUBLISH is always replicated, so WAIT then covers every earlier write
	// (a job refused as a duplicate writes nothing, and WAIT alone would
	// cover only this connection's last write). Nobody subscribes.
	ReplicaChannel = "errand:replica"

	// MetricsKey is the hash where every worker adds its counters, read by
	// /metrics. It belongs to no queue and is written by plain HINCRBY
	// commands, never by a script.
	MetricsKey = "errand:metrics"
	// SchedulesKey: [[schedule]] entries by the last tick queued (unix ms; ZADD GT, no script).
	SchedulesKey = "errand:schedules"
)

// ReplicaKey is errand's counter in queue q's hash slot that the relay
// increments on a Cluster node after the node's jobs and before WAIT (see
// EnqueueManyWaitNodes): on Cluster a PUBLISH is not in the node's
// replication stream, so a write in the queue's own slot is what makes
// WAIT cover the node's earlier writes (a job refused as a duplicate writes
// nothing). Its value means nothing.
func ReplicaKey(q string) string { return "errand:{" + q + "}:replica" }
