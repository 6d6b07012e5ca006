package job_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/job"
)

// greeting is a job type on a queue of its own, not in [queues].
type greeting struct {
	Name string `json:"name"`
}

func (greeting) Kind() string           { return "test:greeting" }
func (greeting) Defaults() job.Defaults { return job.Defaults{Queue: "greetings"} }

// bare declares nothing: it takes every default.
type bare struct{}

func (bare) Kind() string                     { return "test:bare" }
func (bare) Defaults() job.Defaults           { return job.Defaults{} }
func (bare) Work(context.Context, bare) error { return nil }

// A job's queue need not be in [queues]: it is worked with weight 1, beside
// [queues] with their weights; moved by [jobs."<type>"].queue, the type's
// old queue goes unless [queues] lists it. A queue neither lists is refused.
func TestJobQueuesWorkWithoutALineInQueues(t *testing.T) {
	cfg := config.Default()
	reg := job.NewRegistry(cfg)
	job.Register[greeting](reg, nil)
	job.Register[bare](reg, nil)
	if err := reg.Configure(nil); err != nil {
		t.Fatal(err)
	}
	want := maps.Clone(cfg.Queues)
	want["greetings"] = 1
	if got := reg.Queues(); !maps.Equal(got, want) {
		t.Fatalf("queues %v, want %v", got, want)
	}
	e, err := reg.Prepare(greeting{Name: "Ada"})
	if err != nil || e.Queue != "greetings" {
		t.Fatalf("prepared %+v, %v", e, err)
	}
	if _, err := reg.Prepare(greeting{Name: "Ada"}, job.OnQueue("nowhere")); err == nil || !strings.Contains(err.Error(), `queue "nowhere" is not configured`) {
		t.Fatalf("a queue no one works: %v", err)
	}

	moved := job.NewRegistry(cfg)
	job.Register[greeting](moved, nil)
	if err := moved.Configure(map[string]config.Job{"test:greeting": {Queue: "salutations"}}); err != nil {
		t.Fatal(err)
	}
	if q := moved.Queues(); q["salutations"] != 1 || q["greetings"] != 0 || q["emails"] != cfg.Queues["emails"] {
		t.Fatalf("queues after the move: %v", q)
	}
	if err := moved.Configure(map[string]config.Job{"test:nope": {}}); err == nil || !strings.Contains(err.Error(), "unknown job type") {
		t.Fatalf("an override of an unknown type: %v", err)
	}
}

// What a type leaves out takes errand's defaults, which the policy falls
// back on too.
func TestDefaultsFillWhatATypeLeavesOut(t *testing.T) {
	reg := job.NewRegistry(config.Default())
	job.Register(reg, bare{}.Work)
	def, err := reg.Lookup("test:bare")
	if err != nil {
		t.Fatal(err)
	}
	if def.Queue != job.DefaultQueue || def.MaxAttempts != job.DefaultMaxAttempts || def.Timeout != job.DefaultTimeout ||
		fmt.Sprint(def.Backoff) != fmt.Sprint(job.DefaultBackoff()) {
		t.Fatalf("definition %+v", def)
	}
	unknown := &job.Definition{Type: "gone:away"}
	for used, want := range map[int]time.Duration{1: job.DefaultBackoff()[0], 5: job.DefaultBackoff()[1]} {
		if got := unknown.BackoffFor(used); got != want {
			t.Errorf("a type without backoff waits %s after attempt %d, want %s", got, used, want)
		}
	}
}

// config.toml states the defaults a job type leaves out as they are.
func TestConfigTOMLStatesTheDefaults(t *testing.T) {
	raw, err := os.ReadFile("../../config.toml")
	if err != nil {
		t.Fatal(err)
	}
	var waits []string
	for _, d := range job.DefaultBackoff() {
		waits = append(waits, fmt.Sprintf("%q", toml(d)))
	}
	line := fmt.Sprintf("#   queue = %q, max_attempts = %d, timeout = %q, backoff = [%s]\n",
		job.DefaultQueue, job.DefaultMaxAttempts, toml(job.DefaultTimeout), strings.Join(waits, ", "))
	if !strings.Contains(string(raw), line) {
		t.Fatalf("config.toml lacks the line\n%s", line)
	}
}

// toml writes d as config.toml does: "10s", "1m".
func toml(d time.Duration) string {
	if d%time.Minute == 0 {
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return fmt.Sprintf("%ds", d/time.Second)
}

// Handle gives a registered type its handler, which gets the payload
// decoded; it refuses a type never registered.
func TestHandleGivesARegisteredTypeItsHandler(t *testing.T) {
	reg := job.NewRegistry(config.Default())
	job.Register[greeting](reg, nil)
	def, _ := reg.Lookup("test:greeting")
	if def.Work != nil {
		t.Fatal("a handler before Handle")
	}
	var got string
	if err := job.Handle(reg, func(_ context.Context, g greeting) error { got = g.Name; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := def.Work(context.Background(), []byte(`{"name":"Ada"}`)); err != nil || got != "Ada" {
		t.Fatalf("ran with %q: %v", got, err)
	}
	if err := job.Handle(reg, bare{}.Work); !errors.Is(err, job.ErrUnknownType) {
		t.Fatalf("Handle of an unregistered type: %v", err)
	}
}
