// Command errand runs a web shop's slow, failure-prone side effects in the
// background, reliably. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	// Each command takes the signals it cares about itself: serve stops on the
	// first, the worker stops gracefully on the first and at once on a second.
	err := run(context.Background(), os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		// --help printed the usage: not an error.
	case errors.As(err, &ue):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "errand: "+err.Error())
		os.Exit(1)
	}
}

// usageError has already printed the usage; main only sets the exit code.
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

const usage = `errand runs a web shop's side effects in the background, reliably.

Usage:
  errand serve                                the HTTP API, webhooks, dashboard, /metrics
  errand worker [--queues LIST] [--concurrency N] [--strict]
                                              work jobs (LIST: "a,b" = priority order, "a:3,b:1" = weights)
        [--max-jobs N] [--max-time D] [--stop-when-empty]
                                              end the worker (exit 0, as on SIGTERM) after N jobs, after D,
                                              or once its queues have nothing due
  errand queues [--json]                      each queue's sizes, today's counts and latency
  errand failed list [--queue Q] [--json]     jobs that failed for good (kept in the database)
  errand failed retry ID|--all                queue failed jobs again, same ids, full attempts
  errand failed forget ID                     remove one job from the failed list
  errand failed flush                         empty the failed list
  errand failed prune --older-than D          remove the jobs that failed longer ago than D (720h)
  errand timeline ENTITY [--json]             every job of user:42 or order:1001, each attempt
  errand enqueue TYPE --payload JSON [--delay 5s] [--queue Q]
                                              push one job by hand
  errand schedule list [--json]               each [[schedule]] entry with its last and next run
  errand migrate                              create or upgrade the database schema
  errand healthcheck [--url URL]              exit 0 when the local serve's /readyz answers 200 (containers)
  errand sandbox [--addr 127.0.0.1:8090]      local fakes of Slack, Telegram, Tidio, fulfillment, Shopify
  errand sandbox send-order [--order ID]      send a correctly signed sample Shopify orders/paid webhook
  errand sandbox send-tracking --order ID [--tracking NUMBER]
                                              send a correctly signed sample tracking callback

Every command takes --config PATH (default ./config.toml). Every setting can be
overridden by an environment variable ERRAND_<SECTION>__<KEY>, e.g.
ERRAND_SMTP__PASSWORD or ERRAND_REDIS__ADDR.
`

// run is the whole program, callable from tests.
func run(ctx context.Context, args []string, environ []string, stdout, stderr io.Writer) error {
	if args = hoistConfig(args); len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{errors.New("no command")}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return cmdServe(ctx, rest, environ, stdout, stderr)
	case "worker":
		return cmdWorker(ctx, rest, environ, stdout, stderr)
	case "queues":
		return cmdQueues(ctx, rest, environ, stdout, stderr)
	case "failed":
		return cmdFailed(ctx, rest, environ, stdout, stderr)
	case "timeline":
		return cmdTimeline(ctx, rest, environ, stdout, stderr)
	case "enqueue":
		return cmdEnqueue(ctx, rest, environ, stdout, stderr)
	case "schedule":
		return cmdSchedule(ctx, rest, environ, stdout, stderr)
	case "migrate":
		return cmdMigrate(ctx, rest, environ, stdout, stderr)
	case "sandbox":
		return cmdSandbox(ctx, rest, environ, stdout, stderr)
	case "healthcheck":
		return cmdHealthcheck(ctx, rest, environ, stdout, stderr)
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprintf(stderr, "errand: unknown command %q\n\n%s", cmd, usage)
		return usageError{fmt.Errorf("unknown command %q", cmd)}
	}
}
