package workerid

import (
	"errors"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

var placeOnce = sync.OnceValue(func() string {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	ns, err := os.Readlink("/proc/self/ns/pid") // "pid:[4026531836]"
	if err != nil {
		return ""
	}
	ns = strings.TrimSuffix(strings.TrimPrefix(ns, "pid:["), "]")
	b := strings.TrimSpace(string(boot))
	if b == "" || ns == "" {
		return ""
	}
	return b + "." + ns
})

// ourPlace is the kernel's boot id and this process's pid namespace: where a
// pid names the same process for every process that reads it.
func ourPlace() string { return placeOnce() }

// processStart returns when process pid started, as /proc/<pid>/stat says.
func processStart(pid int) (string, bool) {
	start, alive, known := processState(pid)
	return start, known && alive
}

// processState reads /proc/<pid>/stat: the process's start time and whether
// it is alive (not a zombie); known is false when that cannot be told. A pid
// with no entry is a process that is gone — known, not alive — if signal 0
// says so too: /proc mounted with hidepid hides other users' processes,
// which signal 0 still finds (EPERM).
func processState(pid int) (start string, alive, known bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if errors.Is(err, fs.ErrNotExist) {
		if errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			return "", false, true
		}
		return "", false, false
	}
	if err != nil {
		return "", false, false
	}
	// The command name, in parentheses, may hold spaces: fields are counted
	// from the last ')'. Then come state (field 3) … starttime (field 22).
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", false, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return "", false, false
	}
	state := f[0]
	return f[19], state != "Z" && state != "X" && state != "x", true
}
