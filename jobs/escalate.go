package jobs

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/errandhq/errand/internal/queue"
)

// maxDetailed is how many failures a digest email spells out; the rest are
// counted.
const maxDetailed = 50

type escalate struct{ Deps }

type failureView struct {
	queue.Failure
	QueuedAt string
	FailedAt string
	Link     string
}

// Work sends the developers one email for the failures of one window. When it
// cannot, it logs every failure at ERROR with the email's details and fails, so
// the policy retries it on the critical queue: a final failure is never silent.
func (h *escalate) Work(ctx context.Context, d queue.Digest) error {
	cfg := h.Config
	if len(cfg.Escalation.To) == 0 {
		for _, f := range d.Failures {
			h.Log.Error("final failure (escalation.to is empty, so no email is sent)", f.LogAttrs()...)
		}
		return nil
	}
	types := map[string]int{}
	views := make([]failureView, 0, len(d.Failures))
	for i, f := range d.Failures {
		types[f.Type]++
		if i >= maxDetailed {
			continue
		}
		views = append(views, failureView{
			Failure:  f,
			QueuedAt: stamp(f.QueuedAt),
			FailedAt: stamp(f.FailedAt),
			Link:     dashboardLink(cfg.HTTP.PublicURL, cfg.Dashboard.Path, f.Queue, f.ID),
		})
	}
	names := make([]string, 0, len(types))
	for t, n := range types {
		if n > 1 {
			t = fmt.Sprintf("%s ×%d", t, n)
		}
		names = append(names, t)
	}
	sort.Strings(names)
	msg, err := h.Mailer.Render("escalation", map[string]any{
		"Failures": views,
		"More":     len(d.Failures) - len(views),
		"Types":    strings.Join(names, ", "),
	})
	if err != nil {
		return err
	}
	if n := len(d.Failures); n != len(views) {
		msg.Subject = strings.Replace(msg.Subject, fmt.Sprintf("[errand] %d job", len(views)), fmt.Sprintf("[errand] %d job", n), 1)
	}
	msg.To = cfg.Escalation.To
	if err := h.Mailer.Send(ctx, msg); err != nil {
		for _, f := range d.Failures {
			h.Log.Error("escalation email not sent; will retry", append(f.LogAttrs(), "send_error", err.Error())...)
		}
		return err
	}
	return nil
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	return t.UTC().Format("2006-01-02 15:04:05.000 MST")
}

// dashboardLink points at the job in the dashboard.
func dashboardLink(publicURL, path, queueName, id string) string {
	return strings.TrimRight(publicURL, "/") + "/" + strings.Trim(path, "/") +
		"/queues/" + url.PathEscape(queueName) + "/tasks/" + url.PathEscape(id)
}
