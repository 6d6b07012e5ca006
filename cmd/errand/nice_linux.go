package main

import (
	"os"
	"strconv"
	"syscall"
)

// lowerPriority sets the nice value of the process. Linux keeps one per
// thread, so every thread there is now is set; threads started later inherit
// it from the thread that starts them.
func lowerPriority(nice int) error {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return syscall.Setpriority(syscall.PRIO_PROCESS, 0, nice)
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, nice); err != nil {
			return err
		}
	}
	return nil
}
