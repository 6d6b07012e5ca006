package job

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Envelope is a job ready to be queued: built (and validated) without touching
// Redis, so it can be saved in the database with the change that caused it and
// queued later. ID becomes the asynq task ID, so queuing it twice is harmless.
type Envelope struct {
	ID       string    `json:"id"`
	Type     string    `json:"type"`
	Queue    string    `json:"queue"`
	Payload  []byte    `json:"payload"`
	DueAt    time.Time `json:"due_at"`
	QueuedAt time.Time `json:"queued_at"`
	// Callback: the outcome is to be reported (see store.Callback).
	Callback bool `json:"callback,omitempty"`
	// Entity is the business entity the job is for ("user:42"; see
	// Entitied), recorded in the job's history when it is saved; "" for none.
	Entity string `json:"entity,omitempty"`
}

// Option changes how one job is queued.
type Option func(*Envelope)

// Delay runs the job no earlier than d from now (instead of the type's default).
func Delay(d time.Duration) Option {
	return func(e *Envelope) { e.DueAt = e.QueuedAt.Add(d) }
}

// OnQueue puts the job on another queue than its type's.
func OnQueue(q string) Option { return func(e *Envelope) { e.Queue = q } }

// WithCallback marks the job as one whose outcome is reported to a callback
// URL kept in the database.
func WithCallback() Option { return func(e *Envelope) { e.Callback = true } }

// WithID sets the job's ID (it must be unique).
func WithID(id string) Option { return func(e *Envelope) { e.ID = id } }

// Prepare builds the envelope of a typed job.
func (r *Registry) Prepare(args Args, opts ...Option) (Envelope, error) {
	def, err := r.Lookup(args.Kind())
	if err != nil {
		return Envelope{}, err
	}
	payload, err := json.Marshal(args)
	if err != nil {
		return Envelope{}, fmt.Errorf("job: encode %s: %w", args.Kind(), err)
	}
	if err := def.check(payload); err != nil {
		return Envelope{}, err
	}
	e, err := r.prepare(def, payload, opts)
	if err == nil {
		if en, ok := args.(Entitied); ok {
			e.Entity = en.Entity()
		}
	}
	return e, err
}

// PrepareRaw builds the envelope of a job given as a type name and JSON
// payload, checking both. The payload is stored as its type encodes it, not
// as it was given: fields the type does not know are dropped, so a caller
// cannot carry anything else (a password, say) into Redis, the dashboard and
// the escalation emails.
func (r *Registry) PrepareRaw(typ string, payload []byte, opts ...Option) (Envelope, error) {
	def, err := r.Lookup(typ)
	if err != nil {
		return Envelope{}, err
	}
	if len(bytes.TrimSpace(payload)) == 0 {
		payload = []byte("{}")
	}
	payload, err = def.reencode(payload)
	if err != nil {
		return Envelope{}, err
	}
	e, err := r.prepare(def, payload, opts)
	if err == nil {
		e.Entity = def.Entity(payload)
	}
	return e, err
}

// prepare builds the envelope of a checked payload.
func (r *Registry) prepare(def *Definition, payload []byte, opts []Option) (Envelope, error) {
	now := time.Now()
	e := Envelope{ID: NewID(now), Type: def.Type, Queue: def.Queue, Payload: payload, QueuedAt: now, DueAt: now.Add(def.Delay)}
	for _, o := range opts {
		o(&e)
	}
	if _, ok := r.queues[e.Queue]; !ok {
		return Envelope{}, fmt.Errorf("queue %q is not configured", e.Queue)
	}
	if e.DueAt.Before(e.QueuedAt) {
		return Envelope{}, fmt.Errorf("delay must not be negative")
	}
	if e.DueAt.After(e.QueuedAt) {
		// Due times travel in milliseconds: round up, never down, so a job
		// never starts before the instant it was asked for.
		e.DueAt = ceilMilli(e.DueAt)
	}
	return e, nil
}

func ceilMilli(t time.Time) time.Time {
	if r := t.Truncate(time.Millisecond); r.Before(t) {
		return r.Add(time.Millisecond)
	}
	return t
}

// Delayed reports whether the job is to wait: it was queued with a delay and
// its time has not come. An immediate job goes straight to its queue's
// pending list, in the order it was queued.
func (e Envelope) Delayed() bool {
	return e.DueAt.After(e.QueuedAt) && e.DueAt.After(time.Now())
}
