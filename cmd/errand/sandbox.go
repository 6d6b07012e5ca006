package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/errandhq/errand/internal/sandbox"
	"github.com/errandhq/errand/internal/web"
)

// cmdSandbox serves the local fakes of the services errand calls.
func cmdSandbox(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	f := newFlags("sandbox", "sandbox [--addr :8090] | sandbox send-order [--order ID] | sandbox send-tracking --order ID [--tracking NUMBER]", stderr)
	addr := f.String("addr", "127.0.0.1:8090", "listen address")
	if _, err := f.parse(args); err != nil {
		return err
	}
	cfg, err := f.load(environ)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	sb := sandbox.New(cfg)
	return web.Serve(ctx, *addr, sb.Handler(), log, func(a string) {
		log.Info("sandbox serving Slack, Telegram, Tidio, fulfillment and Shopify fakes", "addr", a, "calls", "http://"+a+"/_sandbox/")
	})
}
