package config

import "time"

// History is the [history] section: how long each job's history (the
// timeline of its entity) is kept. The failed list is kept until `errand
// failed prune`.
type History struct {
	Retention time.Duration `koanf:"retention"`
}

// DefaultHistory keeps the history 30 days.
func DefaultHistory() History { return History{Retention: 720 * time.Hour} }

func (h History) validate() []string {
	if h.Retention < time.Hour {
		return []string{"history.retention: must be at least 1h (got " + h.Retention.String() + ")"}
	}
	return nil
}
