// Package schedule queues the jobs of config.toml's [[schedule]] entries at
// every tick of their cron line or interval: every worker runs a Scheduler,
// and each tick is queued once however many do, under a job id made of the
// entry's name and the tick's time, which Redis refuses a second time. A tick
// missed while no worker ran is queued by the next one to start, within
// CatchUp.
package schedule

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/job"
	"github.com/robfig/cron/v3"
)

// CatchUp bounds the ticks a worker queues late: those missed while no
// worker ran (a restart, a deploy) are queued when one starts if they are at
// most this old, and at most MaxCatchUp of them, the latest, per entry.
const (
	CatchUp    = time.Hour
	MaxCatchUp = 60
)

// Entry is one checked [[schedule]] entry.
type Entry struct {
	Name     string
	Type     string
	Queue    string
	Cron     string         // five fields, or empty
	Location *time.Location // Cron's time zone
	Every    time.Duration  // or a fixed interval
	Payload  []byte         // as the type encodes it
	cron     cron.Schedule
}

// names a schedule may take: they are part of job ids.
var validName = regexp.MustCompile(`^[A-Za-z0-9:_.\-]+$`)

// Parse checks the [[schedule]] entries against the registered job types:
// each names a known type, exactly one of cron (five fields, read in
// timezone) and every (whole seconds, at least 1s), and a payload the type
// accepts. The error is one line naming each key to fix, as schedule[N].key
// with N counted from 1 in config.toml's order.
func Parse(cfg []config.Schedule, reg *job.Registry) ([]*Entry, error) {
	var errs []string
	bad := func(i int, key, format string, args ...any) {
		errs = append(errs, fmt.Sprintf("schedule[%d].%s: %s", i+1, key, fmt.Sprintf(format, args...)))
	}
	var out []*Entry
	names := map[string]int{}
	for i, c := range cfg {
		e := &Entry{Name: c.Name, Type: c.Type, Cron: strings.TrimSpace(c.Cron), Every: c.Every, Location: time.UTC}
		if e.Name == "" {
			e.Name = c.Type
		}
		ok := true
		switch {
		case c.Type == "":
			bad(i, "type", "must name a job type")
			ok = false
		case !validName.MatchString(e.Name):
			bad(i, "name", "%q may hold only letters, digits and : _ . -", e.Name)
			ok = false
		default:
			if first, dup := names[e.Name]; dup {
				bad(i, "name", "%q is also schedule[%d]'s name: give each entry of one type its own name", e.Name, first+1)
				ok = false
			}
			names[e.Name] = i
		}
		if c.Type != "" {
			def, err := reg.Lookup(c.Type)
			if err != nil {
				bad(i, "type", "%v", err)
				ok = false
			} else {
				e.Queue = def.Queue
				payload, err := json.Marshal(c.Payload)
				if err == nil && c.Payload == nil {
					payload = []byte("{}")
				}
				if err == nil {
					var env job.Envelope
					if env, err = reg.PrepareRaw(c.Type, payload); err == nil {
						e.Payload = env.Payload
					}
				}
				if err != nil {
					bad(i, "payload", "%v", err)
					ok = false
				}
			}
		}
		switch {
		case e.Cron != "" && e.Every != 0:
			bad(i, "every", "give cron or every, not both")
			ok = false
		case e.Cron == "" && e.Every == 0:
			bad(i, "cron", "give cron (five fields, e.g. \"0 2 * * *\") or every (e.g. \"5m\")")
			ok = false
		case e.Cron != "":
			if c.Timezone != "" {
				loc, err := time.LoadLocation(c.Timezone)
				if err != nil {
					bad(i, "timezone", "%q is not a time zone (e.g. \"Europe/Berlin\", \"UTC\")", c.Timezone)
					ok = false
					break
				}
				e.Location = loc
			}
			if n := len(strings.Fields(e.Cron)); n != 5 {
				bad(i, "cron", "%q has %d fields; want five: minute hour day-of-month month day-of-week", e.Cron, n)
				ok = false
				break
			}
			s, err := cron.ParseStandard(e.Cron)
			if err != nil {
				bad(i, "cron", "%q: %v", e.Cron, err)
				ok = false
				break
			}
			spec := s.(*cron.SpecSchedule)
			spec.Location = e.Location
			e.cron = spec
		default:
			if c.Timezone != "" {
				bad(i, "timezone", "applies to cron only; every counts from the Unix epoch")
				ok = false
			}
			if e.Every < time.Second || e.Every%time.Second != 0 {
				bad(i, "every", "must be whole seconds, at least 1s (got %s)", e.Every)
				ok = false
			}
		}
		if ok {
			out = append(out, e)
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("config: %s", strings.Join(errs, "; "))
	}
	return out, nil
}

// Next is the entry's first tick after t.
func (e *Entry) Next(t time.Time) time.Time {
	if e.cron != nil {
		n := e.cron.Next(t)
		if e.fixedHour() && e.repeatedWallClock(n) {
			// The clocks went back and this wall-clock time is here a second
			// time: a job at a fixed hour runs once a night, as cron runs it.
			n = e.cron.Next(n)
		}
		return n
	}
	step := e.Every.Milliseconds()
	return time.UnixMilli((t.UnixMilli()/step + 1) * step)
}

// fixedHour reports whether the cron line names its hours (not "*"): its
// job runs at set wall-clock times.
func (e *Entry) fixedHour() bool {
	return !strings.HasPrefix(strings.Fields(e.Cron)[1], "*")
}

// repeatedWallClock reports whether t's wall-clock time in e's zone was
// already shown earlier, the clocks having gone back (by an hour, or half an
// hour where the change is half an hour).
func (e *Entry) repeatedWallClock(t time.Time) bool {
	wall := t.In(e.Location).Format("2006-01-02 15:04")
	for _, back := range []time.Duration{30 * time.Minute, time.Hour} {
		if t.Add(-back).In(e.Location).Format("2006-01-02 15:04") == wall {
			return true
		}
	}
	return false
}

// ticks are the entry's ticks in (from, to], oldest first: at most limit,
// the latest.
func (e *Entry) ticks(from, to time.Time, limit int) []time.Time {
	var out []time.Time
	for t := e.Next(from); !t.After(to); t = e.Next(t) {
		out = append(out, t)
		if len(out) > limit {
			out = out[1:]
		}
	}
	return out
}

// JobID is the id of the entry's job for tick: every worker makes the same
// one, and Redis refuses the second.
func (e *Entry) JobID(tick time.Time) string {
	return e.Name + "@" + tick.UTC().Format("2006-01-02T15:04:05Z")
}

// When is the entry's timing as config.toml gives it.
func (e *Entry) When() string {
	if e.cron != nil {
		return fmt.Sprintf("cron %q %s", e.Cron, e.Location)
	}
	return "every " + e.Every.String()
}
