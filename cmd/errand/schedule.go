package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/errandhq/errand/internal/schedule"
)

// scheduleRun is one [[schedule]] entry as `errand schedule list --json`
// prints it.
type scheduleRun struct {
	Name     string          `json:"name"`
	Type     string          `json:"type"`
	Queue    string          `json:"queue"`
	Cron     string          `json:"cron,omitempty"`
	Timezone string          `json:"timezone,omitempty"`
	Every    string          `json:"every,omitempty"`
	Payload  json.RawMessage `json:"payload"`
	LastRun  *time.Time      `json:"last_run"` // null: never queued
	NextRun  time.Time       `json:"next_run"`
}

func cmdSchedule(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	f := newFlags("schedule", "schedule list [--json]", stderr)
	asJSON := f.Bool("json", false, "print JSON")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || pos[0] != "list" {
		f.Usage()
		return usageError{fmt.Errorf("schedule: want the subcommand list")}
	}
	a, err := f.open(environ)
	if err != nil {
		return err
	}
	defer a.close()
	cfg := a.cfg
	// A bad entry is told before Redis is asked anything.
	entries, err := schedule.Parse(cfg.Schedule, a.reg)
	if err != nil {
		return err
	}
	if err := a.pingRedis(ctx); err != nil {
		return err
	}
	last, err := schedule.LastRuns(ctx, a.rdb, entries)
	if err != nil {
		return err
	}
	now := time.Now()
	runs := make([]scheduleRun, len(entries))
	for i, e := range entries {
		r := scheduleRun{Name: e.Name, Type: e.Type, Queue: e.Queue, Cron: e.Cron, Payload: e.Payload, NextRun: e.Next(now).UTC()}
		if e.Cron != "" {
			r.Timezone = e.Location.String()
		} else {
			r.Every = e.Every.String()
		}
		if !last[i].IsZero() {
			t := last[i].UTC()
			r.LastRun = &t
		}
		runs[i] = r
	}
	if *asJSON {
		return printJSON(stdout, runs)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tTYPE\tQUEUE\tWHEN\tLAST RUN\tNEXT RUN")
	for i, r := range runs {
		lastRun := "never"
		if r.LastRun != nil {
			lastRun = r.LastRun.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", termSafe(r.Name), termSafe(r.Type), termSafe(r.Queue),
			termSafe(entries[i].When()), lastRun, r.NextRun.Format(time.RFC3339))
	}
	return tw.Flush()
}
