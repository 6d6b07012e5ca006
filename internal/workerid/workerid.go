// Package workerid names a worker process in the leases it holds, so that
// another worker on the same host can tell for certain that it is dead.
package workerid

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
)

// A worker's id names the process in the leases it holds (rdb.AsWorker):
//
//	<host>/<pid>/<start>/<place>
//
// start is when the process started (clock ticks since boot, from
// /proc/<pid>/stat), so a pid used again by a later process names another
// worker; place is the kernel's boot id and the pid namespace, the one place
// where that pid means that process. A worker in the same place tells for
// certain whether the named one is still alive: its pid is gone, or now
// another process's (another start), or a zombie — dead; anything else,
// alive. That is how a worker restarted after a crash puts back the jobs of
// the one it replaces at once, instead of when their leases end.
//
// Where the place cannot be read (not Linux, no /proc), place is empty and
// start random: such a worker, or a worker elsewhere (another host, another
// container), is never judged dead; its jobs come back when their leases end.

// New returns this process's worker id.
func New() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	host = strings.ReplaceAll(host, "/", "_")
	pid := os.Getpid()
	place := ourPlace()
	start, ok := processStart(pid)
	if place == "" || !ok {
		var b [8]byte
		_, _ = rand.Read(b[:])
		place, start = "", "r"+hex.EncodeToString(b[:])
	}
	return host + "/" + strconv.Itoa(pid) + "/" + start + "/" + place
}

// Dead says whether worker (an id of New's) is certainly dead:
// it ran in this process's place and its process is gone. It never says so of
// a living process, nor of a worker it cannot check.
func Dead(worker string) bool {
	parts := strings.Split(worker, "/")
	if len(parts) != 4 || parts[3] == "" || parts[3] != ourPlace() {
		return false
	}
	pid, err := strconv.Atoi(parts[1])
	if err != nil || pid <= 0 {
		return false
	}
	start, alive, known := processState(pid)
	if !known {
		return false
	}
	return !alive || start != parts[2]
}
