package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/errandhq/errand/internal/failed"
	"github.com/errandhq/errand/internal/store"
)

const failedSynopsis = "failed list [--queue Q] [--json] | failed retry ID|--all [--queue Q] | failed forget ID | failed flush | failed prune --older-than D"

func cmdFailed(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	f := newFlags("failed", failedSynopsis, stderr)
	qname := f.String("queue", "", "only this queue (list, retry --all)")
	asJSON := f.Bool("json", false, "print JSON (list), and no progress")
	all := f.Bool("all", false, "retry every failed job (retry)")
	olderThan := f.String("older-than", "", "prune: remove the jobs that failed longer ago than this, e.g. 720h")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return f.missing("failed: give a subcommand: list, retry, forget, flush or prune")
	}
	sub := pos[0]
	pos = pos[1:]
	needID := func() (string, error) {
		if len(pos) == 0 && sub == "retry" {
			return "", f.missing("failed retry: give the ID of a failed job (errand failed list shows them), or --all")
		}
		if len(pos) != 1 {
			return "", f.missing("failed %s: give exactly one job ID (errand failed list shows them)", sub)
		}
		return pos[0], nil
	}
	var age time.Duration
	switch sub {
	case "list", "flush", "forget":
	case "retry":
		if *all && len(pos) > 0 {
			f.Usage()
			return usageError{errors.New("failed retry: give an ID or --all, not both")}
		}
		if !*all {
			if _, err := needID(); err != nil {
				return err
			}
		}
	case "prune":
		if *olderThan == "" {
			return f.missing("failed prune: give --older-than, e.g. --older-than 720h")
		}
		if age, err = time.ParseDuration(*olderThan); err != nil || age < 0 {
			return fmt.Errorf("failed prune: --older-than %q is not a duration like 720h or 30m", *olderThan)
		}
	default:
		fmt.Fprintf(stderr, "errand: unknown subcommand %q\nUsage: errand %s\n", sub, failedSynopsis)
		return usageError{fmt.Errorf("failed: unknown subcommand %q", sub)}
	}
	a, err := f.connect(ctx, environ)
	if err != nil {
		return err
	}
	defer a.close()
	if err := a.openHistory(ctx); err != nil {
		return err
	}
	list := failed.New(a.reg, a.rdb, a.st)
	progress := newProgress(stderr, *asJSON)
	switch sub {
	case "list":
		jobs, err := list.Jobs(ctx, *qname)
		if err != nil {
			return err
		}
		if *asJSON {
			if jobs == nil {
				jobs = []store.FailedJob{}
			}
			return printJSON(stdout, jobs)
		}
		return printFailed(stdout, jobs)
	case "retry":
		if *all {
			n, err := list.RetryAll(ctx, *qname, progress.show("queued again"))
			progress.done()
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%d failed job(s) queued again.\n", n)
			return nil
		}
		id, err := needID()
		if err != nil {
			return err
		}
		if err := list.Retry(ctx, id); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s queued again, with the same id and its full attempts.\n", termSafe(id))
		return nil
	case "forget":
		id, err := needID()
		if err != nil {
			return err
		}
		if err := list.Forget(ctx, id); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s removed from the failed list.\n", termSafe(id))
		return nil
	case "prune":
		n, err := list.Prune(ctx, age, progress.show("pruned"))
		progress.done()
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d failed job(s) older than %s removed.\n", n, age)
		return nil
	default: // flush
		n, err := list.Flush(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d failed job(s) removed.\n", n)
		return nil
	}
}

func printFailed(w io.Writer, jobs []store.FailedJob) error {
	if len(jobs) == 0 {
		fmt.Fprintln(w, "No failed jobs.")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTYPE\tQUEUE\tENTITY\tATTEMPTS\tFAILED AT\tERROR")
	for _, j := range jobs {
		attempts := fmt.Sprint(j.Attempts)
		if j.MaxAttempts > 0 {
			attempts = fmt.Sprintf("%d/%d", j.Attempts, j.MaxAttempts)
		}
		entity := j.Entity
		if entity == "" {
			entity = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", termSafe(j.ID), termSafe(j.Type), termSafe(j.Queue), termSafe(entity), attempts,
			j.FailedAt.Local().Format("2006-01-02 15:04:05"), oneLine(j.Error, 100))
	}
	return tw.Flush()
}

// progress shows how far a long command is, on one rewritten line of a
// terminal; in a script (stderr not a terminal) or with --json it shows
// nothing.
type progress struct {
	w     io.Writer // nil: quiet
	shown bool
}

func newProgress(stderr io.Writer, quiet bool) *progress {
	f, ok := stderr.(*os.File)
	if quiet || !ok {
		return &progress{}
	}
	if fi, err := f.Stat(); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return &progress{}
	}
	return &progress{w: stderr}
}

// show returns the callback that prints "verb done/total".
func (p *progress) show(verb string) failed.Progress {
	if p.w == nil {
		return nil
	}
	return func(done, total int) {
		p.shown = true
		fmt.Fprintf(p.w, "\r%s %d/%d (%d%%)", verb, done, total, done*100/max(total, 1))
	}
}

// done ends the progress line.
func (p *progress) done() {
	if p.shown {
		fmt.Fprintln(p.w)
	}
}
