package redistest

import "syscall"

// sysProcAttr makes the kernel kill redis-server when the test binary dies,
// e.g. on a -timeout panic, so no server outlives its test run. (Strictly,
// when the OS thread that started it exits; Go keeps its threads for the
// life of the process unless a goroutine exits while locked to one.)
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
