package metrics

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/errandhq/errand/internal/redistest"
	"github.com/prometheus/client_golang/prometheus"
)

// Counts written by an older errand or another program under a label that is
// not UTF-8, and a queue of that name, are left out of the scrape; every
// valid series is still there, and the in-process counts of such a job type
// are written under a valid label.
func TestMetricsLeaveOutInvalidLabels(t *testing.T) {
	rs := redistest.Start(t)
	ctx := context.Background()
	rdb := rs.Client()
	for field, v := range map[string]any{
		"failed|default|bad\xffname":      3,
		"failed|bad\xffqueue|t":           1,
		"duration_bucket|bad\xffname|0.5": 1,
		"duration_sum|bad\xffname":        0.2,
		"duration_count|bad\xffname":      1,
		"processed|default|ops:noop":      2,
	} {
		if err := rdb.HSet(ctx, metricsKey, field, v).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rdb.SAdd(ctx, "asynq:queues", "bad\xffqueue", "default").Err(); err != nil {
		t.Fatal(err)
	}
	m := NewRecorder(rdb, slog.New(slog.NewTextHandler(io.Discard, nil)))
	m.Observe("other\xfetype", "default", 10*time.Millisecond, Failed)
	m.Escalated("other\xfetype", "default")
	if err := m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for field := range rdb.HGetAll(ctx, metricsKey).Val() {
		if strings.HasPrefix(field, "failed|default|other") && !utf8.ValidString(field) {
			t.Fatalf("the worker wrote a label that is not UTF-8: %q", field)
		}
	}

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(rdb))
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("scrape failed: %v", err)
	}
	var series []string
	for _, f := range families {
		for _, m := range f.GetMetric() {
			s := f.GetName()
			for _, l := range m.GetLabel() {
				s += " " + l.GetName() + "=" + l.GetValue()
			}
			series = append(series, s)
		}
	}
	all := strings.Join(series, "\n")
	for _, want := range []string{
		"errand_jobs_processed_total queue=default type=ops:noop",
		"errand_jobs_failed_total queue=default type=other\uFFFDtype",
		"errand_jobs_escalated_total queue=default type=other\uFFFDtype",
		"errand_job_duration_seconds type=other\uFFFDtype",
		"errand_queue_size queue=default state=pending",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("the scrape lacks %s:\n%s", want, all)
		}
	}
	if strings.Contains(all, "bad") {
		t.Errorf("a series with an invalid label was sent:\n%s", all)
	}
}
