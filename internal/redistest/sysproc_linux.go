package redistest

import "syscall"

// sysProcAttr makes the kernel kill redis-server when the test binary dies,
// e.g. on a -timeout panic, so no server outlives its test run.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
