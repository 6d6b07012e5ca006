package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/errandhq/errand/internal/limit"
)

// printServices adds to `errand queues` the services that have a [limits]
// rate or are held after throttling us: a held service's jobs wait, on every
// queue, until the time shown.
func printServices(ctx context.Context, a *app, w io.Writer) error {
	now := time.Now()
	sts, err := limit.Statuses(ctx, a.rdb, a.cfg.Limits, now)
	if err != nil || len(sts) == 0 {
		return err
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tRATE\tSTATE")
	for _, st := range sts {
		rate := "-"
		if st.Rate != "" {
			rate = fmt.Sprintf("%s burst %d", st.Rate, st.Burst)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", st.Service, termSafe(rate), holdText(st, now))
	}
	return tw.Flush()
}

// holdText says whether a service is held, and until when, as a person
// reads it: "held until 20:01:02 UTC (in 3s)".
func holdText(st limit.Status, now time.Time) string {
	if !st.Held(now) {
		return "not held"
	}
	in := st.HeldUntil.Sub(now).Round(time.Second)
	if in < time.Second {
		in = time.Second
	}
	return fmt.Sprintf("held until %s (in %s)", st.HeldUntil.Format("15:04:05 MST"), in)
}
