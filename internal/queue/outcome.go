package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// CallbackType is the job that reports a job's outcome to the callback URL
// given with POST /api/jobs.
const CallbackType = "ops:callback"

// Outcome is how a job ended, as reported to its callback URL.
type Outcome struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	State    string `json:"state"` // completed | failed
	Attempts int    `json:"attempts"`
	Error    string `json:"error,omitempty"`
}

// Kind implements Args.
func (Outcome) Kind() string { return CallbackType }

// Defaults implements Args.
func (Outcome) Defaults() Defaults {
	return Defaults{Queue: "default", MaxAttempts: 5, Timeout: 30 * time.Second,
		Backoff: []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute}}
}

// Validate implements Validator.
func (o Outcome) Validate() error {
	if o.ID == "" || (o.State != "completed" && o.State != "failed") {
		return fmt.Errorf("id and state (completed or failed) are required")
	}
	return nil
}

// report queues the callback of a finished job whose task asked for one. The
// task id is derived from the job's, so a job reported twice (a worker lost
// after finishing it) calls back once.
func (e *Escalator) report(o Outcome) error {
	def, err := e.reg.Lookup(CallbackType)
	if err != nil {
		return err
	}
	payload, err := json.Marshal(o)
	if err != nil {
		return err
	}
	now := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = e.client.Enqueue(ctx, Envelope{ID: "callback-" + o.ID + "-" + o.State, Type: CallbackType,
		Queue: def.Queue, Payload: payload, QueuedAt: now, DueAt: now})
	if errors.Is(err, ErrDuplicate) {
		return nil
	}
	return err
}
