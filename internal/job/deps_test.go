package job_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The job contract is a leaf: of errand it imports only the error classes and
// the configuration, so every other package (the database layer above all)
// can hold envelopes without the queue engine, and nothing here can import
// its way into a cycle.
func TestJobIsALeaf(t *testing.T) {
	const pkg = "github.com/errandhq/errand/internal/job"
	out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	allowed := map[string]bool{"github.com/errandhq/errand": true, "github.com/errandhq/errand/internal/config": true}
	for _, imp := range strings.Fields(string(out)) {
		if strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") && !allowed[imp] {
			t.Errorf("internal/job imports %s; it may import only the standard library, errand and internal/config", imp)
		}
	}
	out, err = exec.Command("go", "list", "-deps", pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, d := range strings.Fields(string(out)) {
		for _, banned := range []string{"github.com/hibiken/asynq", "github.com/prometheus/", "github.com/redis/go-redis"} {
			if strings.HasPrefix(d, banned) {
				t.Errorf("internal/job depends on %s", d)
			}
		}
	}
}
