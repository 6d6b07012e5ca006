package rdb_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/rdb"
	"github.com/errandhq/errand/internal/redistest"
	"github.com/hibiken/asynq"
)

// The jobs that failed for good today, counted per day (on a Redis Cluster,
// where the count's keys must be of one slot): jobs, not attempts.
func TestFailedOnDaysCountsJobsFailedThatDay(t *testing.T) {
	rs := redistest.Start(t, redistest.Cluster())
	c := rs.Client()
	client := asynq.NewClientFromRedisClient(c)
	ains := asynq.NewInspectorFromRedisClient(c)
	for _, id := range []string{"a", "b", "c"} {
		if _, err := client.Enqueue(asynq.NewTask("t", nil), asynq.Queue("emails"), asynq.TaskID(id), asynq.MaxRetry(1<<20)); err != nil {
			t.Fatal(err)
		}
	}
	before := time.Now()
	for _, id := range []string{"a", "b"} {
		if err := ains.ArchiveTask("emails", id); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	ins := rdb.NewInspector(c, nil)
	if before.UTC().YearDay() != now.UTC().YearDay() {
		// Midnight (UTC) passed while archiving: the two days hold both.
		got, err := ins.FailedOnDays(context.Background(), "emails", []time.Time{before, now})
		if err != nil || got[0]+got[1] != 2 {
			t.Fatalf("failed across midnight: %v, %v; want 2 in all", got, err)
		}
		return
	}
	days := []time.Time{now, now.Add(-24 * time.Hour), now.Add(24 * time.Hour)}
	got, err := ins.FailedOnDays(context.Background(), "emails", days)
	if err != nil || !slices.Equal(got, []int{2, 0, 0}) {
		t.Fatalf("failed today, yesterday, tomorrow: %v, %v; want [2 0 0]", got, err)
	}
	if got, err := ins.FailedOnDays(context.Background(), "none", days[:1]); err != nil || got[0] != 0 {
		t.Fatalf("a queue Redis does not know: %v, %v", got, err)
	}
}
