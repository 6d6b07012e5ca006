package history

import (
	"context"

	"github.com/errandhq/errand/internal/store"
)

// Timeline is every job kept for one entity, oldest first: GET
// /api/timeline's answer and `errand timeline --json`.
type Timeline struct {
	Entity string              `json:"entity"`
	Jobs   []store.TimelineJob `json:"jobs"`
}

// Of returns entity's timeline (no jobs for an entity errand never saw).
func Of(ctx context.Context, st store.History, entity string) (Timeline, error) {
	jobs, err := st.Timeline(ctx, entity)
	if err != nil {
		return Timeline{}, err
	}
	if jobs == nil {
		jobs = []store.TimelineJob{}
	}
	return Timeline{Entity: entity, Jobs: jobs}, nil
}
