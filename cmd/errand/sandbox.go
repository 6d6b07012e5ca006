package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/errandhq/errand/internal/sandbox"
	"github.com/errandhq/errand/internal/web"
)

// cmdSandbox serves the local fakes of the services errand calls.
func cmdSandbox(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	for i, a := range args {
		if a == "send-order" || a == "send-tracking" {
			rest := append(append([]string{}, args[:i]...), args[i+1:]...)
			return cmdSandboxSend(ctx, a, rest, environ, stdout, stderr)
		}
	}
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
	// A person sends orders with ids the fake has never seen: it makes them up.
	sb.Shopify.AutoCreateOrders(true)
	return web.Serve(ctx, *addr, sb.Handler(), log, func(a string) {
		log.Info("sandbox serving fakes of "+strings.Join(sb.Services(), ", "), "addr", a, "calls", "http://"+a+"/_sandbox/")
	})
}
