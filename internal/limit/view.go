package limit

import (
	"context"
	"time"

	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/rdb/sharedlimit"
	"github.com/redis/go-redis/v9"
)

// Status is one service as an operator sees it: its [limits] rate, and
// until when every worker holds its jobs after it throttled us.
type Status struct {
	Service string `json:"service"`
	Rate    string `json:"rate,omitempty"`  // "" when it has no [limits] rate
	Burst   int    `json:"burst,omitempty"` // with a rate
	// HeldUntil is when the hold ends; zero when the service is not held.
	HeldUntil time.Time `json:"held_until,omitzero"`
}

// Held says whether the service is held at now.
func (s Status) Held(now time.Time) bool { return s.HeldUntil.After(now) }

// Statuses reads, in one round trip, the services that have a [limits] rate
// (limits, as configured) or are held at now, in config.Services' order. It
// only reads.
func Statuses(ctx context.Context, c redis.UniversalClient, limits map[string]config.Limit, now time.Time) ([]Status, error) {
	holds, err := sharedlimit.New(c).LimitHolds(ctx, config.Services)
	if err != nil {
		return nil, err
	}
	var out []Status
	for _, name := range config.Services {
		st := Status{Service: name}
		if l, ok := limits[name]; ok && l.Rate != "" {
			st.Rate, st.Burst = l.Rate, max(l.Burst, 1)
		}
		if end := holds[name]; end.After(now) {
			st.HeldUntil = end
		}
		if st.Rate != "" || !st.HeldUntil.IsZero() {
			out = append(out, st)
		}
	}
	return out, nil
}
