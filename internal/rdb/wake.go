package rdb

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// An idle worker does not poll Redis: it waits for a wake-up on WakeChannel,
// published by the scripts that make a job ready:
//
//	"job:<queue>"  a job became pending on queue, whose list was empty
//	"due:<score>"  a job was put in a scheduled or retry set, due at score
//	               (DueScore's form)
//
// Any other message (older errand versions sent "job") means a job may be
// pending on any queue.

// Wake is one wake-up.
type Wake struct {
	// Queue is the queue a job became pending on; "" for any queue. Unused
	// when Due is set.
	Queue string
	// Due is when the job put in a scheduled or retry set is due; zero for a
	// pending job.
	Due time.Time
}

// ParseWake reads a wake-up message.
func ParseWake(payload string) Wake {
	if score, ok := strings.CutPrefix(payload, "due:"); ok {
		at, ok := parseScore(score)
		if !ok {
			at = time.Now()
		}
		return Wake{Due: at}
	}
	q, _ := strings.CutPrefix(payload, "job:")
	if q == payload {
		q = ""
	}
	return Wake{Queue: q}
}

// Subscribe subscribes to the wake-ups. go-redis subscribes again by itself
// after a lost connection; a wake-up lost meanwhile costs a worker at most
// its poll interval.
func (r *RDB) Subscribe(ctx context.Context) *redis.PubSub {
	return r.c.Subscribe(ctx, WakeChannel)
}

// DueScore is a due instant as a scheduled or retry set's score: Unix seconds
// with the milliseconds as a fraction, rounded up, so a job is never handed
// over before its instant. asynq writes whole seconds and moves a job once
// its score is at most the current whole second; it reads this form alike.
func DueScore(t time.Time) string {
	ms := (t.UnixNano() + int64(time.Millisecond) - 1) / int64(time.Millisecond)
	return strconv.FormatInt(ms/1000, 10) + "." + fmt.Sprintf("%03d", ms%1000)
}

// parseScore reads a score of DueScore's form (or a whole second).
func parseScore(s string) (time.Time, bool) {
	sec, frac, _ := strings.Cut(s, ".")
	si, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	ms, err := strconv.ParseInt((frac + "000")[:3], 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(si, ms*int64(time.Millisecond)), true
}
