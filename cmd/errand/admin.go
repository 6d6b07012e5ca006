package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/queue"
	"github.com/errandhq/errand/internal/store"
)

// printJSON writes v as indented JSON. encoding/json escapes C0 controls but
// writes DEL, C1 controls and bidi controls raw, and a terminal acts on those
// when the output is read there (or through jq): they are escaped too, which
// leaves the JSON's meaning unchanged.
func printJSON(w io.Writer, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	// The only C0 characters left are the indentation's newlines.
	rawInJSON := func(r rune) bool { return r >= 0x7f && unsafeForTerminal(r) }
	out := buf.String()
	if strings.IndexFunc(out, rawInJSON) >= 0 {
		var b strings.Builder
		for _, r := range out {
			if rawInJSON(r) {
				fmt.Fprintf(&b, `\u%04x`, r)
				continue
			}
			b.WriteRune(r)
		}
		out = b.String()
	}
	_, err := io.WriteString(w, out)
	return err
}

// unsafeForTerminal reports the characters a terminal acts on instead of
// showing: C0 controls, DEL, C1 controls (U+0080–U+009F; some terminals take
// U+009B as CSI), the line and paragraph separators, and the bidi embedding,
// override and isolate controls, which reorder what is shown (Trojan Source).
func unsafeForTerminal(r rune) bool {
	switch {
	case r < 0x20, r >= 0x7f && r <= 0x9f:
		return true
	case r == 0x2028, r == 0x2029:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

// termSafe returns s ready for a table on a terminal: text that came from
// outside (job types, queue names, error texts, written by API clients or
// third parties) shows every control character as a visible escape (ESC as
// \x1b, U+202E as \u202e) and a byte that is not UTF-8 as \xNN, so none of
// it can move the cursor, retitle the window, clear the screen or reorder the
// line.
func termSafe(s string) string {
	clean := true
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if unsafeForTerminal(r) || r == utf8.RuneError && n == 1 {
			clean = false
			break
		}
		i += n
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unsafeForTerminal(r) && r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeForTerminal(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
		i += n
	}
	return b.String()
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
	fmt.Fprintln(tw, "QUEUE\tWEIGHT\tPENDING\tSCHEDULED\tRETRY\tACTIVE\tFAILED\tSUCCEEDED TODAY\tFAILED ATTEMPTS TODAY\tLATENCY\t")
	for _, s := range stats {
		name := termSafe(s.Queue)
		if s.Paused {
			name += " (paused)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t\n", name, s.Weight, s.Pending, s.Scheduled, s.Retry, s.Active, s.Failed,
			s.SucceededToday, s.FailedToday, formatAge(time.Duration(s.LatencySeconds*float64(time.Second))))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return printServices(ctx, a, stdout)
}

// formatAge prints a duration the way a person reads it in a table.
func formatAge(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return strconv.Itoa(int(d.Milliseconds())) + "ms"
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	default:
		return d.Round(time.Second).String()
	}
}

// oneLine fits text from outside into one table cell: runs of white space
// (newlines, CR, tabs) become one space, other controls are escaped
// (termSafe), and the result is cut at max characters.
func oneLine(s string, max int) string {
	s = termSafe(strings.Join(strings.Fields(s), " "))
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
		return f.missing("enqueue: give exactly one job TYPE (e.g. ops:noop)")
	}
	var opts []job.Option
	if *delay != "" {
		d, err := time.ParseDuration(*delay)
		if err != nil || d < 0 {
			return fmt.Errorf("enqueue: --delay %q is not a duration like 5s or 2m", *delay)
		}
		opts = append(opts, job.Delay(d))
	}
	if *qname != "" {
		opts = append(opts, job.OnQueue(*qname))
	}
	if !json.Valid([]byte(*payload)) {
		return fmt.Errorf("enqueue: --payload is not valid JSON")
	}
	a, err := f.open(environ)
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
	// Not in the outbox's transaction: the job is in Redis already, so a
	// history that cannot be written is said, not an error.
	err = a.openHistory(ctx)
	if err == nil {
		err = a.st.RecordQueued(ctx, []job.Envelope{e})
	}
	if err != nil {
		fmt.Fprintf(stderr, "errand: the job is queued, but its history could not be written: %v\n", err)
	}
	fmt.Fprintf(stdout, "queued %s %s on %s, due %s\n", termSafe(e.Type), termSafe(e.ID), termSafe(e.Queue), e.DueAt.Local().Format("15:04:05.000"))
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
