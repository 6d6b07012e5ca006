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
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/config"
)

// Defaults are what a job type declares beside its code in jobs/; config.toml's
// [jobs."<type>"] overrides them. A field left zero takes errand's default
// below, so a type declares only where it differs.
type Defaults struct {
	Queue       string          // DefaultQueue when empty
	Delay       time.Duration   // none when zero
	MaxAttempts int             // DefaultMaxAttempts when zero
	Timeout     time.Duration   // DefaultTimeout when zero
	Backoff     []time.Duration // wait before attempt 2, 3, …; the last repeats; DefaultBackoff() when empty
	// Unbounded jobs never use up attempts: every failure is retried after the
	// backoff until the throttle deadline. The escalation email is one.
	Unbounded bool
	// OrderBy names a top-level payload field (its json name): jobs of the
	// type with the same value run one at a time, in the order queued. Empty:
	// no order.
	OrderBy string
}

// errand's defaults for what a job type leaves zero in its Defaults: the one
// place they are written (config.toml, the policy and the job files refer to
// them).
const (
	DefaultQueue       = "default"
	DefaultMaxAttempts = 3
	DefaultTimeout     = 60 * time.Second
)

// DefaultBackoff is the backoff of a job type that declares none: 10 s before
// the second attempt, a minute before each later one.
func DefaultBackoff() []time.Duration { return []time.Duration{10 * time.Second, time.Minute} }

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
	OrderBy          string // see Defaults.OrderBy

	// Work decodes the payload and does the work; nil where no handler was
	// given (a process that only enqueues, or a worker that does not take
	// the type's queue).
	Work WorkFunc

	// check decodes and validates a payload.
	check func(payload []byte) error
	// fields are the payload's top-level json field names, which OrderBy
	// may name.
	fields []string
	// reencode checks a payload and returns it encoded from its decoded type.
	reencode func(payload []byte) ([]byte, error)
	// entity names the entity of a payload (see Entitied); nil for a type
	// whose payloads name none.
	entity func(payload []byte) string
	// sources build the payload from events, by event name (see Sourced).
	sources map[string]Source
}

// jsonFields are the json names of struct type t's exported top-level
// fields; none for another kind of type.
func jsonFields(t reflect.Type) []string {
	if t.Kind() != reflect.Struct {
		return nil
	}
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		out = append(out, name)
	}
	return out
}

// OrderKey is payload's ordering key: the value of its OrderBy field, as
// text. ok is false when the type is not ordered, or the payload has no such
// field (or null): such a job runs unordered.
func (d *Definition) OrderKey(payload []byte) (key string, ok bool) {
	if d.OrderBy == "" {
		return "", false
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(payload, &fields) != nil {
		return "", false
	}
	raw, found := fields[d.OrderBy]
	if !found || string(raw) == "null" {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, true
	}
	// Anything else keys by its JSON text: a number 42 and a string "42"
	// are one key.
	return string(raw), true
}

// WorkFunc runs one attempt of a job on its encoded payload. A payload that
// does not decode is a permanent failure.
type WorkFunc func(ctx context.Context, payload []byte) error

// Check reports whether payload is a valid payload for this job type.
func (d *Definition) Check(payload []byte) error { return d.check(payload) }

// BackoffFor returns the wait before the attempt after the one numbered
// used (1-based: used=1 is the wait before attempt 2). A definition without
// a backoff (one made for a type errand does not know) waits DefaultBackoff.
func (d *Definition) BackoffFor(used int) time.Duration {
	backoff := d.Backoff
	if len(backoff) == 0 {
		backoff = DefaultBackoff()
	}
	i := min(max(used-1, 0), len(backoff)-1)
	return backoff[i]
}

// Registry holds every job type errand knows.
type Registry struct {
	defs map[string]*Definition
	// configured is [queues]; queues adds every job type's queue that is
	// not in it, at weight 1.
	configured map[string]int
	queues     map[string]int
	policy     config.Policy
}

// NewRegistry returns an empty registry for the configured queues and policy.
func NewRegistry(cfg *config.Config) *Registry {
	r := &Registry{defs: map[string]*Definition{}, configured: cfg.Queues, policy: cfg.Policy}
	r.indexQueues()
	return r
}

// indexQueues sets the queues errand works: [queues] with their weights, and
// each job type's queue that is not listed there with weight 1, so a job
// type's queue works without a line in [queues].
func (r *Registry) indexQueues() {
	r.queues = make(map[string]int, len(r.configured)+len(r.defs))
	for q, w := range r.configured {
		r.queues[q] = w
	}
	for _, def := range r.defs {
		if _, ok := r.queues[def.Queue]; !ok {
			r.queues[def.Queue] = 1
		}
	}
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
		OrderBy:          d.OrderBy,
		ThrottleDeadline: r.policy.ThrottleDeadline,
	}
	if def.Queue == "" {
		def.Queue = DefaultQueue
	}
	if def.MaxAttempts == 0 {
		def.MaxAttempts = DefaultMaxAttempts
	}
	if def.Timeout == 0 {
		def.Timeout = DefaultTimeout
	}
	if len(def.Backoff) == 0 {
		def.Backoff = DefaultBackoff()
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
	if _, ok := any(zero).(Entitied); ok {
		def.entity = func(payload []byte) string {
			args, err := decode[A](payload)
			if err != nil {
				return ""
			}
			return any(args).(Entitied).Entity()
		}
	}
	def.fields = jsonFields(reflect.TypeFor[A]())
	def.sources = sourcesOf[A]()
	if def.OrderBy != "" && !slices.Contains(def.fields, def.OrderBy) {
		panic(fmt.Sprintf("job: %s orders by %q, which is not a field of its payload", def.Type, def.OrderBy))
	}
	if work != nil {
		def.Work = workFunc(work)
	}
	if _, dup := r.defs[def.Type]; dup {
		panic("job: type registered twice: " + def.Type)
	}
	r.defs[def.Type] = def
	r.indexQueues()
}

// Handle gives the registered type A its handler: a worker registers every
// type first (to know their queues, with the configuration applied), then
// builds the handlers of the types it runs.
func Handle[A Args](r *Registry, work func(ctx context.Context, args A) error) error {
	var zero A
	def, err := r.Lookup(zero.Kind())
	if err != nil {
		return err
	}
	def.Work = workFunc(work)
	return nil
}

// workFunc runs work on a decoded payload; a payload that does not decode is
// a permanent failure.
func workFunc[A Args](work func(ctx context.Context, args A) error) WorkFunc {
	return func(ctx context.Context, payload []byte) error {
		args, err := decode[A](payload)
		if err != nil {
			return errand.PermanentError(err)
		}
		return work(ctx, args)
	}
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
			// errors.Join puts each problem on a line of its own: one line
			// reads better in a terminal, a log and a 422.
			return args, fmt.Errorf("%w: %s", ErrInvalidPayload, strings.ReplaceAll(err.Error(), "\n", "; "))
		}
	}
	return args, nil
}

func describeJSONError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" {
			return fmt.Sprintf("must be a JSON object, not %s", te.Value)
		}
		return fmt.Sprintf("field %q must be %s, not %s", te.Field, te.Type.String(), te.Value)
	}
	return err.Error()
}

// Configure applies [jobs."<type>"] overrides. A job's queue need not be in
// [queues]: one that is not is worked with weight 1. Call it once, after every
// Register.
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
		if j.OrderBy != nil {
			if o := *j.OrderBy; o != "" && !slices.Contains(def.fields, o) {
				errs = append(errs, fmt.Sprintf("jobs.%q.order_by: %q is not a payload field (fields: %s)", name, o, strings.Join(def.fields, ", ")))
				continue
			}
			def.OrderBy = *j.OrderBy // "" turns a type's default order off
		}
	}
	r.indexQueues()
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

// Queues returns the queues errand works and their weights: those of
// [queues], and every job type's queue, at weight 1 when [queues] does not
// list it. The map is shared: do not change it.
func (r *Registry) Queues() map[string]int { return r.queues }

// Retention is how long a completed job stays visible.
func (r *Registry) Retention() time.Duration { return r.policy.Retention }
