package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
)

// EscalateType is the job that emails the developers about final failures.
const EscalateType = "ops:escalate"

// escalationGroup collects failures into one digest: asynq holds the group's
// tasks until no new failure arrived for escalation.window, then hands them to
// the aggregator as one task.
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
	// Error and Payload are redacted (see Redactor).
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

// Kind implements Args.
func (Digest) Kind() string { return EscalateType }

// Defaults implements Args: the escalation runs on critical, right away, and is
// retried until sent (its attempts are not counted).
func (Digest) Defaults() Defaults {
	return Defaults{
		Queue:     "critical",
		Timeout:   time.Minute,
		Backoff:   []time.Duration{5 * time.Second, time.Minute},
		Unbounded: true,
	}
}

// Validate implements Validator.
func (d Digest) Validate() error {
	if len(d.Failures) == 0 {
		return fmt.Errorf("failures: must not be empty")
	}
	return nil
}

// Escalator queues escalations.
type Escalator struct {
	reg    *Registry
	ac     *asynq.Client // escalations: asynq's grouping makes the digest
	client *Client       // callbacks
	redact *Redactor
}

// NewEscalator returns an escalator that queues through ac and masks, in what
// it sends, the secrets the Redactor knows plus the keys named in redact
// (escalation.redact).
func NewEscalator(reg *Registry, ac *asynq.Client, redact []string) *Escalator {
	return &Escalator{reg: reg, ac: ac, redact: NewRedactor(redact)}
}

// Escalate queues the failure for the next digest.
func (e *Escalator) Escalate(f Failure) error {
	def, err := e.reg.Lookup(EscalateType)
	if err != nil {
		return err
	}
	payload, err := json.Marshal(Digest{Failures: []Failure{f}})
	if err != nil {
		return err
	}
	now := time.Now()
	headers := map[string]string{headerQueued: strconv.FormatInt(now.UnixMilli(), 10)}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = e.ac.EnqueueContext(ctx, asynq.NewTaskWithHeaders(EscalateType, payload, headers),
		asynq.Queue(def.Queue), asynq.Group(escalationGroup), asynq.MaxRetry(maxRetrySentry),
		asynq.Timeout(def.Timeout+timeoutGrace))
	return err
}

// aggregate merges the failures of one window into one digest task.
func aggregate(_ string, tasks []*asynq.Task) *asynq.Task {
	var all Digest
	for _, t := range tasks {
		var d Digest
		if err := json.Unmarshal(t.Payload(), &d); err == nil {
			all.Failures = append(all.Failures, d.Failures...)
		}
	}
	payload, _ := json.Marshal(all)
	headers := map[string]string{headerQueued: strconv.FormatInt(time.Now().UnixMilli(), 10)}
	return asynq.NewTaskWithHeaders(EscalateType, payload, headers)
}
