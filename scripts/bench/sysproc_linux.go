package main

import "syscall"

// sysProcAttr makes the kernel stop a process the bench started when the
// bench dies, so no worker or errand process outlives it.
func sysProcAttr(sig syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: sig}
}
