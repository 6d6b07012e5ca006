package workerid

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A worker id names a living process until that process is gone; a pid used
// again by another process, a zombie, or a worker from another place is
// judged as it must be: dead, dead, and never dead.
func TestDeadWorkerKnowsOnlyProcessesOfItsPlace(t *testing.T) {
	self := New()
	if strings.HasSuffix(self, "/") {
		t.Fatalf("worker id %q has no place on Linux", self)
	}
	if Dead(self) {
		t.Fatal("this living process is judged dead")
	}
	child := exec.Command("sleep", "60")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = child.Process.Kill(); _, _ = child.Process.Wait() })
	start, ok := processStart(child.Process.Pid)
	if !ok {
		t.Fatal("cannot read the child's start")
	}
	parts := strings.Split(self, "/")
	id := func(pid int, start, place string) string {
		return parts[0] + "/" + strconv.Itoa(pid) + "/" + start + "/" + place
	}
	living := id(child.Process.Pid, start, parts[3])
	if Dead(living) {
		t.Fatal("a living process is judged dead")
	}
	if !Dead(id(child.Process.Pid, start+"1", parts[3])) {
		t.Fatal("a pid now another process's is judged alive")
	}
	if Dead(id(child.Process.Pid, start+"1", "another-boot.1")) || Dead(id(child.Process.Pid, start+"1", "")) {
		t.Fatal("a worker of another place is judged dead")
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	// Killed but not yet reaped: a zombie, which runs nothing.
	waitZombie(t, child.Process.Pid)
	if !Dead(living) {
		t.Fatal("a killed (zombie) process is judged alive")
	}
	_, _ = child.Process.Wait()
	if !Dead(living) {
		t.Fatal("a process that is gone is judged alive")
	}
	for _, bad := range []string{"", "x", "h/notapid/1/" + parts[3], "h/-1/1/" + parts[3]} {
		if Dead(bad) {
			t.Fatalf("malformed id %q judged dead", bad)
		}
	}
}

func waitZombie(t *testing.T, pid int) {
	t.Helper()
	for range 500 {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err == nil {
			s := string(b)
			if f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]); len(f) > 0 && f[0] == "Z" {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the killed child never became a zombie")
}
