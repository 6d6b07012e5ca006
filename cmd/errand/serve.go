package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/outbox"
	"github.com/errandhq/errand/internal/queue"
	"github.com/errandhq/errand/internal/redact"
	"github.com/errandhq/errand/internal/store"
	"github.com/errandhq/errand/internal/web"
)

func cmdServe(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	f := newFlags("serve", "serve [--addr :8080]", stderr)
	f.String("addr", "", "listen address (overrides http.addr)")
	f.overrides("addr", "http.addr")
	if _, err := f.parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	a, err := f.open(environ)
	if err != nil {
		return err
	}
	defer a.close()
	cfg := a.cfg
	// [events] names job types: one unknown, or not built from its event,
	// stops serve here rather than failing each request.
	events, err := job.NewEvents(a.reg, cfg.Events)
	if err != nil {
		return err
	}

	st, err := store.Open(cfg.Database.URL)
	if err != nil {
		return err
	}
	defer st.Close()
	st.MaskPayloads(redact.New(cfg.Escalation.Redact))
	if applied, err := st.Migrate(ctx); err != nil {
		return err
	} else if len(applied) > 0 {
		a.log.Info("database migrated", "versions", fmt.Sprint(applied))
	}
	if err := a.pingRedis(ctx); err != nil {
		var refused *redisRefusedError
		if errors.As(err, &refused) {
			return err
		}
		// Requests are still taken: their jobs wait in the outbox.
		a.log.Warn("Redis is unreachable; jobs wait in the database until it is back", "error", err.Error())
	} else {
		a.warnIfEvicting(ctx)
	}

	client := queue.NewClient(a.reg, a.rdb)
	relay := outbox.NewRelay(st, client, a.log)
	// On a cluster the relay waits master by master (outbox/nodes.go).
	relay.WaitForReplica(a.rdb, cfg.Redis.ReplicaWait, cfg.Redis.Mode == config.RedisSentinel)
	var wg sync.WaitGroup
	rctx, stopRelay := context.WithCancel(context.Background())
	wg.Add(1)
	go func() { defer wg.Done(); relay.Run(rctx) }()
	if !cfg.Database.PollOnly {
		// Jobs saved by other processes wake this relay too (PostgreSQL's
		// LISTEN/NOTIFY); its poll stays the safety net.
		wg.Add(1)
		go func() {
			defer wg.Done()
			st.WatchOutbox(rctx, relay.Kick, func(err error) {
				a.log.Warn("outbox relay: not listening for new jobs; polling every second until it can (set database.poll_only behind PgBouncer in transaction mode)", "error", err.Error())
			})
		}()
	}
	defer func() { stopRelay(); wg.Wait(); client.Close() }()

	h, closeDash := web.New(&web.Server{Config: cfg, Store: st, Registry: a.reg, Events: events, Relay: relay, Redis: a.rdb, Log: a.log})
	defer closeDash()
	return web.Serve(ctx, cfg.HTTP.Addr, h, a.log, func(addr string) {
		a.log.Info("serving", "addr", addr, "dashboard", cfg.Dashboard.Path)
	})
}
