package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/errandhq/errand/internal/history"
	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/redact"
	"github.com/errandhq/errand/internal/store"
)

// openHistory opens the database for the commands that read or write the
// job history (failed, timeline, enqueue), with escalation.redact masking
// what it keeps.
func (a *app) openHistory(ctx context.Context) error {
	if a.st != nil {
		return nil
	}
	st, err := store.Open(a.cfg.Database.URL)
	if err != nil {
		return err
	}
	if _, err := st.Migrate(ctx); err != nil {
		_ = st.Close()
		return err
	}
	st.MaskPayloads(redact.New(a.cfg.Escalation.Redact))
	a.st = st
	return nil
}

// startHistory gives the worker's policy its history: a batched writer of
// attempts, closed (flushed) by the returned stop once the worker has
// stopped, and the periodic prune of [history] retention.
func (a *app) startHistory(ctx context.Context) (*history.Writer, func()) {
	a.st.MaskPayloads(redact.New(a.cfg.Escalation.Redact))
	w := history.NewWriter(a.st, a.reg, a.log)
	pctx, cancel := context.WithCancel(ctx)
	go history.Prune(pctx, a.st, a.cfg.History.Retention, a.log)
	return w, func() { cancel(); w.Close() }
}

func cmdTimeline(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	f := newFlags("timeline", "timeline ENTITY [--json]   (ENTITY: user:42, order:1001)", stderr)
	asJSON := f.Bool("json", false, "print JSON (as GET /api/timeline answers)")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		f.Usage()
		return usageError{errors.New("timeline: give exactly one ENTITY, e.g. user:42")}
	}
	entity := pos[0]
	if !job.ValidEntity(entity) {
		return fmt.Errorf("timeline: %q is not an entity: give a kind and an id, e.g. user:42 or order:1001", termSafe(entity))
	}
	a, err := f.open(environ)
	if err != nil {
		return err
	}
	defer a.close()
	if err := a.openHistory(ctx); err != nil {
		return err
	}
	tl, err := history.Of(ctx, a.st, entity)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, tl)
	}
	return printTimeline(stdout, entity, tl.Jobs)
}

// printTimeline writes an entity's jobs as a table, oldest first, each job's
// attempts under it.
func printTimeline(w io.Writer, entity string, jobs []store.TimelineJob) error {
	if len(jobs) == 0 {
		fmt.Fprintf(w, "No jobs for %s.\n", entity)
		return nil
	}
	const at = "2006-01-02 15:04:05.000"
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tJOB\tQUEUE\tSTATE\tDETAIL")
	for _, j := range jobs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", j.QueuedAt.Local().Format(at), termSafe(j.Type), termSafe(j.Queue), termSafe(j.State), "queued as "+termSafe(j.ID))
		for n, a := range j.Attempts {
			outcome, detail := "succeeded", ""
			if a.Error != "" {
				outcome, detail = "failed", oneLine(a.Error, 100)
			}
			fmt.Fprintf(tw, "%s\t  attempt %d\t\t%s\t%s\n", a.At.Local().Format(at), n+1, outcome, detail)
		}
	}
	return tw.Flush()
}
