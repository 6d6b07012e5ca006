// Package job is the contract between errand's job types and everything that
// queues, stores or runs them: a job type's payload (Args) and its Defaults,
// the Registry of types merged with the configuration, the Envelope a job
// travels in before it reaches Redis, and job IDs. It knows nothing of Redis,
// asynq or the worker, so the database layer can hold envelopes without them.
package job

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/config"
)

// Defaults are what a job type declares beside its code in jobs/; config.toml's
// [jobs."<type>"] overrides them.
type Defaults struct {
	Queue       string
	Delay       time.Duration
	MaxAttempts int             // 3 when zero
	Timeout     time.Duration   // 60 s when zero
	Backoff     []time.Duration // wait before attempt 2, 3, …; the last repeats
	// Unbounded jobs never use up attempts: every failure is retried after the
	// backoff until the throttle deadline. The escalation email is one.
	Unbounded bool
}

// Args is a job's payload type: a struct with json tags that names its job type
// and declares its defaults.
type Args interface {
	Kind() string
	Defaults() Defaults
}

// Validator is implemented by payloads that can check themselves; a payload
// that fails validation is refused at enqueue and is a permanent failure in the
// worker.
type Validator interface {
	Validate() error
}

// Definition is one job type as the program runs it: its defaults merged with
// the configuration, how to check a payload, and how to run it.
type Definition struct {
	Type             string
	Queue            string
	Delay            time.Duration
	MaxAttempts      int
	Timeout          time.Duration
	Backoff          []time.Duration
	Unbounded        bool
	ThrottleDeadline time.Duration

	// Work decodes the payload and does the work; nil where no handler was
	// given (a process that only enqueues).
	Work WorkFunc

	// check decodes and validates a payload.
	check func(payload []byte) error
	// reencode checks a payload and returns it encoded from its decoded type.
	reencode func(payload []byte) ([]byte, error)
}

// WorkFunc runs one attempt of a job on its encoded payload. A payload that
// does not decode is a permanent failure.
type WorkFunc func(ctx context.Context, payload []byte) error

// Check reports whether payload is a valid payload for this job type.
func (d *Definition) Check(payload []byte) error { return d.check(payload) }

// BackoffFor returns the wait before the attempt after the one numbered
// used (1-based: used=1 is the wait before attempt 2).
func (d *Definition) BackoffFor(used int) time.Duration {
	if len(d.Backoff) == 0 {
		return 10 * time.Second
	}
	i := used - 1
	if i < 0 {
		i = 0
	}
	if i >= len(d.Backoff) {
		i = len(d.Backoff) - 1
	}
	return d.Backoff[i]
}

// Registry holds every job type errand knows.
type Registry struct {
	defs   map[string]*Definition
	queues map[string]int
	policy config.Policy
}

// NewRegistry returns an empty registry for the configured queues and policy.
func NewRegistry(cfg *config.Config) *Registry {
	return &Registry{defs: map[string]*Definition{}, queues: cfg.Queues, policy: cfg.Policy}
}

// ErrUnknownType is returned for a job type errand does not know.
var ErrUnknownType = errors.New("unknown job type")

// ErrInvalidPayload wraps every payload decoding or validation error.
var ErrInvalidPayload = errors.New("invalid payload")

// Register adds job type A with its handler. work may be nil in processes that
// only enqueue.
func Register[A Args](r *Registry, work func(ctx context.Context, args A) error) {
	var zero A
	d := zero.Defaults()
	def := &Definition{
		Type:             zero.Kind(),
		Queue:            d.Queue,
		Delay:            d.Delay,
		MaxAttempts:      d.MaxAttempts,
		Timeout:          d.Timeout,
		Backoff:          d.Backoff,
		Unbounded:        d.Unbounded,
		ThrottleDeadline: r.policy.ThrottleDeadline,
	}
	if def.Queue == "" {
		def.Queue = "default"
	}
	if def.MaxAttempts == 0 {
		def.MaxAttempts = 3
	}
	if def.Timeout == 0 {
		def.Timeout = 60 * time.Second
	}
	if len(def.Backoff) == 0 {
		def.Backoff = []time.Duration{10 * time.Second, time.Minute}
	}
	def.check = func(payload []byte) error {
		_, err := decode[A](payload)
		return err
	}
	def.reencode = func(payload []byte) ([]byte, error) {
		args, err := decode[A](payload)
		if err != nil {
			return nil, err
		}
		out, err := json.Marshal(args)
		if err != nil {
			return nil, fmt.Errorf("%w: encode %s: %v", ErrInvalidPayload, def.Type, err)
		}
		return out, nil
	}
	if work != nil {
		def.Work = func(ctx context.Context, payload []byte) error {
			args, err := decode[A](payload)
			if err != nil {
				return errand.PermanentError(err)
			}
			return work(ctx, args)
		}
	}
	if _, dup := r.defs[def.Type]; dup {
		panic("job: type registered twice: " + def.Type)
	}
	r.defs[def.Type] = def
}

func decode[A Args](payload []byte) (A, error) {
	var args A
	if len(payload) == 0 {
		payload = []byte("{}")
	}
	if err := json.Unmarshal(payload, &args); err != nil {
		return args, fmt.Errorf("%w: %s", ErrInvalidPayload, describeJSONError(err))
	}
	if v, ok := any(args).(Validator); ok {
		if err := v.Validate(); err != nil {
			return args, fmt.Errorf("%w: %v", ErrInvalidPayload, err)
		}
	}
	return args, nil
}

func describeJSONError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %q must be %s, not %s", te.Field, te.Type.String(), te.Value)
	}
	return err.Error()
}

// Configure applies [jobs."<type>"] overrides and checks that every job's queue
// is configured. Call it once, after every Register.
func (r *Registry) Configure(jobs map[string]config.Job) error {
	var errs []string
	for name, j := range jobs {
		def, ok := r.defs[name]
		if !ok {
			errs = append(errs, fmt.Sprintf("jobs.%q: %v (known: %s)", name, ErrUnknownType, strings.Join(r.Types(), ", ")))
			continue
		}
		if j.Queue != "" {
			def.Queue = j.Queue
		}
		if j.Delay != nil {
			def.Delay = *j.Delay
		}
		if j.MaxAttempts > 0 {
			def.MaxAttempts = j.MaxAttempts
		}
		if j.Timeout > 0 {
			def.Timeout = j.Timeout
		}
		if len(j.Backoff) > 0 {
			def.Backoff = j.Backoff
		}
	}
	for _, t := range r.Types() {
		def := r.defs[t]
		if _, ok := r.queues[def.Queue]; !ok {
			errs = append(errs, fmt.Sprintf("job %s uses queue %q, which is not in [queues]", t, def.Queue))
		}
	}
	if len(errs) > 0 {
		sort.Strings(errs)
		return fmt.Errorf("config: %s", strings.Join(errs, "; "))
	}
	return nil
}

// Lookup returns the definition of a job type.
func (r *Registry) Lookup(typ string) (*Definition, error) {
	def, ok := r.defs[typ]
	if !ok {
		return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownType, typ, strings.Join(r.Types(), ", "))
	}
	return def, nil
}

// Types lists the registered job types, sorted.
func (r *Registry) Types() []string {
	out := make([]string, 0, len(r.defs))
	for t := range r.defs {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Queues returns the configured queues and their weights.
func (r *Registry) Queues() map[string]int { return r.queues }

// Retention is how long a completed job stays visible.
func (r *Registry) Retention() time.Duration { return r.policy.Retention }
