package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/v2"
)

// Event is [events."<event>"]: the job types an event queues, in the
// transaction that raised it.
type Event struct {
	Jobs []string `koanf:"jobs"`
}

// DefaultEvents are the events errand's handlers raise, each with the job
// types it queued before events were configurable (SPEC §5's table).
func DefaultEvents() map[string]Event {
	return map[string]Event{
		"user.registered":  {Jobs: []string{"user:welcome_email", "user:notify_staff", "user:sync_crm"}},
		"user.updated":     {Jobs: []string{"user:sync_crm"}},
		"order.paid":       {Jobs: []string{"order:push_fulfillment"}},
		"shipment.shipped": {Jobs: []string{"order:sync_tracking"}},
	}
}

// Schedule is one [[schedule]] entry: a job queued at every tick of Cron (in
// Timezone) or of Every, once however many workers run.
type Schedule struct {
	// Name tells the entry's runs apart (job ids, `errand schedule list`);
	// empty: the type, which two entries of one type cannot share.
	Name     string         `koanf:"name"`
	Type     string         `koanf:"type"`
	Cron     string         `koanf:"cron"`     // five fields: minute hour day-of-month month day-of-week
	Timezone string         `koanf:"timezone"` // the zone Cron is read in; empty = UTC
	Every    time.Duration  `koanf:"every"`    // or a fixed interval, counted from the Unix epoch
	Payload  map[string]any `koanf:"payload"`  // the job's payload; empty = {}
}

// DefaultSchedule is the [[schedule]] list when config.toml has none: the
// shipment reconciler every five minutes.
func DefaultSchedule() []Schedule {
	return []Schedule{{Type: "ops:reconcile_shipments", Every: 5 * time.Minute}}
}

// loadDefaults loads Default() into k. Event names hold dots, koanf's
// delimiter, so [events] goes in as a nested table (a dotted flat key would
// be split into "user" → "registered").
func loadDefaults(k *koanf.Koanf) error {
	flat := Default().Keys()
	for key := range flat {
		if strings.HasPrefix(key, "events.") {
			delete(flat, key)
		}
	}
	if err := k.Load(confmap.Provider(flat, "."), nil); err != nil {
		return err
	}
	events := map[string]any{}
	for name, e := range Default().Events {
		events[name] = map[string]any{"jobs": e.Jobs}
	}
	return k.Load(confmap.Provider(map[string]any{"events": events}, ""), nil)
}

// validateEvents refuses an [events."<event>"] table for an event errand
// does not raise; the job types each event names are checked against the
// registry when `errand serve` starts (job.NewEvents).
func (c *Config) validateEvents(bad func(key, format string, args ...any)) {
	known := DefaultEvents()
	names := slices.Sorted(maps.Keys(known))
	for _, name := range slices.Sorted(maps.Keys(c.Events)) {
		if _, ok := known[name]; !ok {
			bad(fmt.Sprintf("events.%q", name), "errand raises no such event (events: %s)", strings.Join(names, ", "))
		}
	}
}
