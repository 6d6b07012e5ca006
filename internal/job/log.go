package job

import (
	"context"
	"log/slog"
	"sync"
)

type loggerKey struct{}

// Logger returns the logger of the job running with ctx: its lines carry the
// job's id, type, queue and attempt. Handlers log through it.
func Logger(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*lazyLogger); ok {
		return l.get()
	}
	return slog.Default()
}

// WithLogger returns ctx carrying a job's logger, made by make the first time
// it is asked for: formatting a job's attributes for every job would cost
// more than a no-op job itself. It returns the same logger Logger(ctx) does.
func WithLogger(ctx context.Context, make func() *slog.Logger) (context.Context, func() *slog.Logger) {
	l := &lazyLogger{make: make}
	return context.WithValue(ctx, loggerKey{}, l), l.get
}

// lazyLogger makes a job's logger the first time it is needed.
type lazyLogger struct {
	once sync.Once
	l    *slog.Logger
	make func() *slog.Logger
}

func (z *lazyLogger) get() *slog.Logger {
	z.once.Do(func() { z.l = z.make() })
	return z.l
}
