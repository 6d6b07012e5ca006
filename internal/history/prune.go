package history

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/errandhq/errand/internal/store"
)

// pruneEvery is how often each worker deletes the history past retention.
// Every worker does; deleting what another deleted is harmless.
const pruneEvery = time.Hour

// Prune deletes the history older than retention (the failed list is kept
// until `errand failed prune`), soon after start and then every pruneEvery,
// jittered so that workers started together do not prune together, until
// ctx ends.
func Prune(ctx context.Context, st store.History, retention time.Duration, log *slog.Logger) {
	wait := time.Duration(rand.Int64N(int64(time.Minute)))
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		n, err := st.PruneHistory(ctx, time.Now().Add(-retention))
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("job history: prune failed; trying again later", "error", err.Error())
		case n > 0:
			log.Info("job history: pruned", "rows", n, "older_than", retention.String())
		}
		wait = pruneEvery + time.Duration(rand.Int64N(int64(pruneEvery/10)))
	}
}
