//go:build unix && !linux

package main

import "syscall"

// lowerPriority sets the nice value of the process.
func lowerPriority(nice int) error {
	return syscall.Setpriority(syscall.PRIO_PROCESS, 0, nice)
}
