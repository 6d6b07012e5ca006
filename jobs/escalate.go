package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/limit"
	"github.com/errandhq/errand/internal/mail"
	"github.com/errandhq/errand/internal/queue"
)

// EscalateType is the job that emails the developers about final failures.
const EscalateType = "ops:escalate"

// escalationGroup collects failures into one digest: asynq holds the group's
// jobs until no new failure arrived for escalation.window, then the worker
// merges them (MergeDigests) into one ops:escalate job.
const escalationGroup = "escalations"

// Failure is one final failure, as escalated.
type Failure struct {
	ID          string    `json:"id"`
	Type        string    `json:"type"`
	Queue       string    `json:"queue"`
	Attempts    int       `json:"attempts"`
	MaxAttempts int       `json:"max_attempts"`
	Class       string    `json:"class"`
	Error       string    `json:"error"`
	QueuedAt    time.Time `json:"queued_at"`
	FailedAt    time.Time `json:"failed_at"`
	// Error and Payload are redacted (see redact.Redactor).
	Payload string `json:"payload"`
}

// LogAttrs are the failure's details as log attributes, so that the log line
// written when an escalation cannot be sent says everything the email would.
func (f Failure) LogAttrs() []any {
	return []any{
		"job_id", f.ID, "type", f.Type, "queue", f.Queue,
		"attempts", f.Attempts, "max_attempts", f.MaxAttempts,
		"class", f.Class, "error", f.Error,
		"queued_at", f.QueuedAt.UTC().Format(time.RFC3339),
		"failed_at", f.FailedAt.UTC().Format(time.RFC3339),
		"payload", f.Payload,
	}
}

// Digest is the payload of ops:escalate: the failures of one window.
type Digest struct {
	Failures []Failure `json:"failures"`
}

// Kind implements job.Args.
func (Digest) Kind() string { return EscalateType }

// Defaults implements job.Args: the escalation runs on critical, right away,
// and is retried until sent (its attempts are not counted).
func (Digest) Defaults() job.Defaults {
	return job.Defaults{
		Queue:     "critical",
		Timeout:   time.Minute,
		Backoff:   []time.Duration{5 * time.Second, time.Minute},
		Unbounded: true,
	}
}

// Validate implements job.Validator.
func (d Digest) Validate() error {
	if len(d.Failures) == 0 {
		return fmt.Errorf("failures: must not be empty")
	}
	return nil
}

// Escalator queues final failures for the next digest: the failure policy's
// Escalate.
type Escalator struct {
	reg    *job.Registry
	groups *queue.Groups
}

// NewEscalator returns an escalator that prepares digests with reg and
// queues them through groups.
func NewEscalator(reg *job.Registry, groups *queue.Groups) *Escalator {
	return &Escalator{reg: reg, groups: groups}
}

// Escalate queues the final failure f (already redacted by the policy) for
// the next digest.
func (e *Escalator) Escalate(ctx context.Context, f queue.Ending) error {
	env, err := e.reg.Prepare(Digest{Failures: []Failure{failureOf(f)}})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return e.groups.Enqueue(ctx, env, escalationGroup)
}

// failureOf is the digest's entry for a final failure.
func failureOf(f queue.Ending) Failure {
	return Failure{
		ID: f.ID, Type: f.Type, Queue: f.Queue,
		Attempts: f.Attempts, MaxAttempts: f.MaxAttempts,
		Class: f.Class, Error: f.Error, Payload: f.Payload,
		QueuedAt: f.QueuedAt, FailedAt: f.FailedAt,
	}
}

// MergeDigests merges the digests of one window into one: the worker's
// aggregator for the escalation group. A digest that does not decode is left
// out.
func MergeDigests(_ string, payloads [][]byte) []byte {
	var all Digest
	for _, p := range payloads {
		var d Digest
		if err := json.Unmarshal(p, &d); err == nil {
			all.Failures = append(all.Failures, d.Failures...)
		}
	}
	out, _ := json.Marshal(all)
	return out
}

// maxDetailed is how many failures a digest email spells out; the rest are
// counted.
const maxDetailed = 50

// escalate emails the digests through the worker's mailer.
type escalate struct {
	mailer *mail.Mailer
	log    *slog.Logger
	to     []string // escalation.to; empty = log only
	// publicURL and dashboard make each failure's link to the dashboard.
	publicURL, dashboard string
}

func newEscalate(d Deps) (*escalate, error) {
	c := d.Config
	return &escalate{mailer: d.Mailer, log: d.Log, to: c.Escalation.To, publicURL: c.HTTP.PublicURL, dashboard: c.Dashboard.Path}, nil
}

type failureView struct {
	Failure
	QueuedAt string
	FailedAt string
	Link     string
	// Timeline is the dashboard's page of every job of the failure's
	// entity (or of the job alone, when it names none).
	Timeline string
}

// Work sends the developers one email for the failures of one window. When it
// cannot, it logs every failure at ERROR with the email's details and fails, so
// the policy retries it on the critical queue: a final failure is never silent.
func (h *escalate) Work(ctx context.Context, d Digest) error {
	if len(h.to) == 0 {
		for _, f := range d.Failures {
			h.log.Error("final failure (escalation.to is empty, so no email is sent)", f.LogAttrs()...)
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
			Link:     dashboardLink(h.publicURL, h.dashboard, f.Queue, f.ID),
			Timeline: TimelineLink(h.publicURL, h.dashboard, f.ID),
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
	msg, err := h.mailer.Render("escalation", map[string]any{
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
	msg.To = h.to
	if err := h.mailer.Send(ctx, msg); errors.Is(err, limit.ErrRefused) {
		// Not a failure to send: [limits.smtp] asks it to wait its turn. It is
		// tried again then, without using an attempt, until it goes.
		h.log.Warn("escalation email waits for the smtp rate limit", "failures", len(d.Failures), "reason", err.Error())
		return err
	} else if err != nil {
		for _, f := range d.Failures {
			h.log.Error("escalation email not sent; will retry", append(f.LogAttrs(), "send_error", err.Error())...)
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

// TimelineLink points at the dashboard's timeline page of job id's entity:
// <dashboard.path>/timeline?job=<id>.
func TimelineLink(publicURL, path, id string) string {
	base := strings.TrimRight(publicURL, "/")
	if p := strings.Trim(path, "/"); p != "" {
		base += "/" + p
	}
	return base + "/timeline?job=" + url.QueryEscape(id)
}
