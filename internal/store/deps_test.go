package store_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The database layer holds job envelopes (internal/job) and nothing of the
// queue engine: no asynq, no Prometheus, no go-redis. A program that only
// writes to the database links none of them, and a change to the engine
// cannot reach the SQL.
func TestStoreDependsOnNoQueueEngine(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/errandhq/errand/internal/store").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, "github.com/errandhq/errand/internal/job") {
		t.Fatalf("internal/store no longer imports internal/job; the list below is not what this test expects:\n%s", out)
	}
	for _, d := range deps {
		for _, banned := range []string{"github.com/hibiken/asynq", "github.com/prometheus/", "github.com/redis/go-redis", "github.com/errandhq/errand/internal/queue"} {
			if strings.HasPrefix(d, banned) {
				t.Errorf("internal/store depends on %s", d)
			}
		}
	}
}
