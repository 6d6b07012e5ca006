package queue

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/job"
	"github.com/hibiken/asynq"
)

// refusedEscalation stands for the escalation email refused by SMTP (a 550):
// a permanent error, which for a job whose attempts are not counted still
// means "try again".
type refusedEscalation struct{}

func (refusedEscalation) Kind() string { return "test:refused_escalation" }
func (refusedEscalation) Defaults() job.Defaults {
	return job.Defaults{Queue: "critical", Unbounded: true, Backoff: []time.Duration{5 * time.Second}}
}

// The retry line of a job whose attempts are not counted says what happens
// — it is retried until it succeeds, its attempts not counted — and not
// "class=permanent … will retry", which reads as a contradiction.
func TestUnboundedRetryLineSaysWhatHappens(t *testing.T) {
	cfg, err := config.Load("", false, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := job.NewRegistry(cfg)
	job.Register(reg, func(context.Context, refusedEscalation) error {
		return errand.Permanentf("smtp: 550 mailbox unavailable")
	})
	if err := reg.Configure(nil); err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	p := NewPolicy(PolicyConfig{Registry: reg, Log: slog.New(slog.NewTextHandler(logs, nil))})
	headers := map[string]string{headerQueued: strconv.FormatInt(time.Now().UnixMilli(), 10)}
	ctx := context.WithValue(context.Background(), metaKey{}, jobMeta{id: "E1", queue: "critical", retried: 3})
	err = p.ProcessTask(ctx, asynq.NewTaskWithHeaders(refusedEscalation{}.Kind(), []byte(`{}`), headers))
	if v := verdictOf(err); v == nil || v.final || v.counts {
		t.Fatalf("verdict %+v, want a retry that does not count", v)
	}
	line := strings.TrimSpace(logs.String())
	if strings.Count(line, "\n") != 0 || !strings.Contains(line, `level=WARN msg="job failed, will retry until it succeeds (attempts not counted; gives up after policy.throttle_deadline)"`) ||
		!strings.Contains(line, "retry_in=5s") || !strings.Contains(line, "550 mailbox unavailable") || strings.Contains(line, "class=") {
		t.Fatalf("log: %s", line)
	}
	t.Log(line)
}
