package main

import (
	"os"
	"strconv"
	"syscall"
)

// lowerPriority sets the nice value of the process. Linux keeps one per
// thread, so every thread there is now is set; threads started later inherit
// it from the thread that starts them. A thread started while the list is
// walked is caught by the next pass.
func lowerPriority(nice int) error {
	seen := map[int]bool{}
	for range 5 {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return syscall.Setpriority(syscall.PRIO_PROCESS, 0, nice)
		}
		fresh := false
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil || seen[tid] {
				continue
			}
			fresh = true
			seen[tid] = true
			err = syscall.Setpriority(syscall.PRIO_PROCESS, tid, nice)
			if err != nil && err != syscall.ESRCH { // ESRCH: the thread has ended
				return err
			}
		}
		if !fresh {
			return nil
		}
	}
	return nil
}
