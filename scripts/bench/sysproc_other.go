//go:build !linux

package main

import (
	"syscall"
	"time"
)

func sysProcAttr(syscall.Signal) *syscall.SysProcAttr { return nil }

// cpuTime is not measured here.
func cpuTime() time.Duration { return 0 }
