//go:build !linux

package workerid

// ourPlace is empty where errand cannot tell a process's identity by its
// pid: no worker is judged dead by it there (leases end instead).
func ourPlace() string { return "" }

func processStart(int) (string, bool) { return "", false }

func processState(int) (string, bool, bool) { return "", false, false }
