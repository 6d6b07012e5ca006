package job

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/errandhq/errand/internal/config"
)

// Event is something that happened in the shop, raised by the handler that
// saw it with the entity it happened to and its data. Which job types it
// queues is configuration ([events."<event>"] jobs); how each type's payload
// is built from it is the type's own (its Sources).
type Event interface {
	// Event names it as config.toml does: "user.registered". A value type
	// answers it from its zero value.
	Event() string
	// Entity is what it happened to: "user:42", "order:1001".
	Entity() string
}

// Source is how a job type's payload is built from one event.
type Source struct {
	event string
	build func(Event) (Args, bool, error)
}

// From declares that payload A is built from event E by build. build's
// false means this event needs no job of the type (nothing it carries
// changed, say).
func From[E Event, A Args](build func(E) (A, bool)) Source {
	var zero E
	return Source{event: zero.Event(), build: func(ev Event) (Args, bool, error) {
		e, ok := ev.(E)
		if !ok {
			return nil, false, fmt.Errorf("event %s raised as %T, built from %T", ev.Event(), ev, zero)
		}
		a, ok := build(e)
		return a, ok, nil
	}}
}

// Sourced is a payload type built from events: its Sources list them, one
// From each.
type Sourced interface {
	Sources() []Source
}

// sourcesOf indexes A's sources by event name.
func sourcesOf[A Args]() map[string]Source {
	var zero A
	s, ok := any(zero).(Sourced)
	if !ok {
		return nil
	}
	out := map[string]Source{}
	for _, src := range s.Sources() {
		out[src.event] = src
	}
	return out
}

// Events queues, for each event raised, the job types [events] names for it.
type Events struct {
	reg    *Registry
	routes map[string][]*Definition
}

// NewEvents checks [events] against the registered job types: every type an
// event names must be known and built from that event. The error is one line
// naming each key to fix.
func NewEvents(reg *Registry, cfg map[string]config.Event) (*Events, error) {
	ev := &Events{reg: reg, routes: map[string][]*Definition{}}
	var errs []string
	for _, name := range slices.Sorted(maps.Keys(cfg)) {
		key := fmt.Sprintf("events.%q.jobs", name)
		seen := map[string]bool{}
		for _, typ := range cfg[name].Jobs {
			def, err := reg.Lookup(typ)
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s: %v", key, err))
				continue
			}
			if _, ok := def.sources[name]; !ok {
				errs = append(errs, fmt.Sprintf("%s: %s cannot be built from %s (it is built from: %s; types built from %s: %s)",
					key, typ, name, orNone(slices.Sorted(maps.Keys(def.sources))), name, orNone(reg.builtFrom(name))))
				continue
			}
			if seen[typ] {
				errs = append(errs, fmt.Sprintf("%s: %s is listed twice", key, typ))
				continue
			}
			seen[typ] = true
			ev.routes[name] = append(ev.routes[name], def)
		}
		if _, ok := ev.routes[name]; !ok {
			ev.routes[name] = nil // raised, queues nothing
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("config: %s", strings.Join(errs, "; "))
	}
	return ev, nil
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// builtFrom lists the job types built from event name.
func (r *Registry) builtFrom(name string) []string {
	var out []string
	for typ, def := range r.defs {
		if _, ok := def.sources[name]; ok {
			out = append(out, typ)
		}
	}
	slices.Sort(out)
	return out
}

// Raise builds the jobs ev queues, in the order [events] lists them, to be
// saved in the transaction that made the change (the outbox): none when the
// event's list is empty or no type needs a job for this change.
func (e *Events) Raise(ev Event) ([]Envelope, error) {
	defs, ok := e.routes[ev.Event()]
	if !ok {
		return nil, fmt.Errorf("job: event %s is not configured", ev.Event())
	}
	out := make([]Envelope, 0, len(defs))
	for _, def := range defs {
		args, ok, err := def.sources[ev.Event()].build(ev)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		env, err := e.reg.Prepare(args)
		if err != nil {
			return nil, fmt.Errorf("event %s (%s): %w", ev.Event(), ev.Entity(), err)
		}
		out = append(out, env)
	}
	return out, nil
}
