package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/errandhq/errand/internal/queue"
	"github.com/errandhq/errand/internal/store"
)

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func cmdQueues(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	f := newFlags("queues", "queues [--json]", stderr)
	asJSON := f.Bool("json", false, "print JSON")
	if _, err := f.parse(args); err != nil {
		return err
	}
	a, err := f.connect(ctx, environ)
	if err != nil {
		return err
	}
	defer a.close()
	stats, err := queue.NewInspector(a.reg, a.rdb).Queues(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		if stats == nil {
			stats = []queue.QueueStats{}
		}
		return printJSON(stdout, stats)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "QUEUE\tWEIGHT\tPENDING\tSCHEDULED\tRETRY\tACTIVE\tFAILED\tDONE TODAY\tFAILED TODAY\tLATENCY\t")
	for _, s := range stats {
		name := s.Queue
		if s.Paused {
			name += " (paused)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t\n", name, s.Weight, s.Pending, s.Scheduled, s.Retry, s.Active, s.Failed,
			s.ProcessedToday, s.FailedToday, queue.FormatAge(time.Duration(s.LatencySeconds*float64(time.Second))))
	}
	return tw.Flush()
}

func cmdFailed(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	const synopsis = "failed list [--queue Q] [--json] | failed retry ID|--all | failed forget ID | failed flush"
	f := newFlags("failed", synopsis, stderr)
	qname := f.String("queue", "", "only this queue (list, retry --all)")
	asJSON := f.Bool("json", false, "print JSON (list)")
	all := f.Bool("all", false, "retry every failed job (retry)")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		f.Usage()
		return usageError{errors.New("failed: missing subcommand")}
	}
	sub := pos[0]
	pos = pos[1:]
	needID := func() (string, error) {
		if len(pos) != 1 {
			f.Usage()
			return "", usageError{fmt.Errorf("failed %s: give exactly one job ID", sub)}
		}
		return pos[0], nil
	}
	switch sub {
	case "list", "flush", "forget":
	case "retry":
		if *all && len(pos) > 0 {
			f.Usage()
			return usageError{errors.New("failed retry: give an ID or --all, not both")}
		}
	default:
		fmt.Fprintf(stderr, "errand: unknown subcommand %q\nUsage: errand %s\n", sub, synopsis)
		return usageError{fmt.Errorf("failed: unknown subcommand %q", sub)}
	}
	a, err := f.connect(ctx, environ)
	if err != nil {
		return err
	}
	defer a.close()
	ins := queue.NewInspector(a.reg, a.rdb)
	switch sub {
	case "list":
		list, err := ins.Failed(ctx, *qname)
		if err != nil {
			return err
		}
		if *asJSON {
			if list == nil {
				list = []queue.FailedJob{}
			}
			return printJSON(stdout, list)
		}
		if len(list) == 0 {
			fmt.Fprintln(stdout, "No failed jobs.")
			return nil
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tTYPE\tQUEUE\tATTEMPTS\tFAILED AT\tERROR")
		for _, j := range list {
			attempts := fmt.Sprint(j.Attempts)
			if j.MaxAttempts > 0 {
				attempts = fmt.Sprintf("%d/%d", j.Attempts, j.MaxAttempts)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", j.ID, j.Type, j.Queue, attempts,
				j.FailedAt.Local().Format("2006-01-02 15:04:05"), oneLine(j.Error, 100))
		}
		return tw.Flush()
	case "retry":
		if *all {
			done, err := ins.RetryAll(ctx, *qname)
			for _, p := range done {
				fmt.Fprintf(stdout, "%s queued again as %s\n", p[0], p[1])
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%d failed job(s) queued again.\n", len(done))
			return nil
		}
		id, err := needID()
		if err != nil {
			return err
		}
		nid, err := ins.Retry(ctx, id)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s queued again as %s, with its full attempts.\n", id, nid)
		return nil
	case "forget":
		id, err := needID()
		if err != nil {
			return err
		}
		if err := ins.Forget(ctx, id); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s removed from the failed list.\n", id)
		return nil
	default: // flush
		n, err := ins.Flush(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d failed job(s) removed.\n", n)
		return nil
	}
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > max {
		return string(r[:max-1]) + "…"
	}
	return s
}

func cmdEnqueue(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	f := newFlags("enqueue", "enqueue TYPE --payload JSON [--delay 5s] [--queue Q]", stderr)
	payload := f.String("payload", "{}", "the job's payload, JSON")
	delay := f.String("delay", "", "run no earlier than this from now, e.g. 5s (default: the job type's delay)")
	qname := f.String("queue", "", "queue (default: the job type's queue)")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		f.Usage()
		return usageError{errors.New("enqueue: give exactly one job TYPE")}
	}
	var opts []queue.Option
	if *delay != "" {
		d, err := time.ParseDuration(*delay)
		if err != nil || d < 0 {
			return fmt.Errorf("enqueue: --delay %q is not a duration like 5s or 2m", *delay)
		}
		opts = append(opts, queue.Delay(d))
	}
	if *qname != "" {
		opts = append(opts, queue.OnQueue(*qname))
	}
	if !json.Valid([]byte(*payload)) {
		return fmt.Errorf("enqueue: --payload is not valid JSON")
	}
	cfg, err := f.load(environ)
	if err != nil {
		return err
	}
	a, err := newApp(cfg, stderr, false)
	if err != nil {
		return err
	}
	defer a.close()
	e, err := a.reg.PrepareRaw(pos[0], []byte(*payload), opts...)
	if err != nil {
		return fmt.Errorf("enqueue: %w", err)
	}
	if err := a.pingRedis(ctx); err != nil {
		return err
	}
	client := queue.NewClient(a.reg, a.rdb)
	defer client.Close() // sends the workers' wake-up before exiting
	if err := client.Enqueue(ctx, e); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "queued %s %s on %s, due %s\n", e.Type, e.ID, e.Queue, e.DueAt.Local().Format("15:04:05.000"))
	return nil
}

func cmdMigrate(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	f := newFlags("migrate", "migrate", stderr)
	if _, err := f.parse(args); err != nil {
		return err
	}
	cfg, err := f.load(environ)
	if err != nil {
		return err
	}
	st, err := store.Open(cfg.Database.URL)
	if err != nil {
		return err
	}
	defer st.Close()
	applied, err := st.Migrate(ctx)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintln(stdout, "database schema is up to date")
		return nil
	}
	fmt.Fprintf(stdout, "applied migrations %v\n", applied)
	return nil
}
