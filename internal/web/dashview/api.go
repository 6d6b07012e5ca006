package dashview

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// asynqmon shows asynq's view of a job, which is not errand's: errand gives
// asynq an out-of-reach retry limit and counts attempts itself, gives asynq
// a few seconds more than the job type's timeout (so errand's own deadline
// fires first), stores no result, and asynq's day counters count failed
// attempts, not jobs. serveAPI rewrites asynqmon's JSON answers so that the
// dashboard says what `errand failed list` and GET /api/jobs/{id} say.

// serveAPI serves a GET of asynqmon's API, corrected.
func (v *View) serveAPI(w http.ResponseWriter, r *http.Request) {
	rec := record(v.dash, r)
	body := rec.body.Bytes()
	if rec.status != http.StatusOK || r.Method != http.MethodGet {
		rec.send(w, body)
		return
	}
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if dec.Decode(&doc) != nil {
		rec.send(w, body) // not an object: nothing errand corrects
		return
	}
	if err := v.correct(r, doc); err != nil {
		http.Error(w, "dashboard: "+err.Error(), http.StatusInternalServerError)
		return
	}
	out, err := json.Marshal(doc)
	if err != nil {
		http.Error(w, "dashboard: encode: "+err.Error(), http.StatusInternalServerError)
		return
	}
	rec.header.Set("Content-Type", "application/json")
	rec.send(w, append(out, '\n'))
}

// correct rewrites the parts of one asynqmon answer that errand sees
// otherwise, by their shape: queue snapshots, daily counts, tasks.
func (v *View) correct(r *http.Request, doc map[string]any) error {
	ctx := r.Context()
	// The state of a list's tasks is in its path: …/<state>_tasks.
	listState := ""
	if last := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]; strings.HasSuffix(last, "_tasks") {
		listState = strings.TrimSuffix(last, "_tasks")
	}
	if _, ok := doc["id"]; ok {
		v.correctTask(doc, "")
	}
	for _, t := range objects(doc["tasks"]) {
		v.correctTask(t, listState)
	}
	snaps := objects(doc["queues"])
	if s, ok := doc["current"].(map[string]any); ok {
		snaps = append(snaps, s)
	}
	stats, _ := doc["stats"].(map[string]any)
	if _, ok := stats["queue"].(string); ok {
		snaps = append(snaps, stats) // a task list's queue
	} else {
		for _, days := range stats { // /api/queue_stats: days per queue
			if err := v.correctDays(ctx, objects(days)); err != nil {
				return err
			}
		}
	}
	for _, s := range snaps {
		if err := v.correctDays(ctx, []map[string]any{s}); err != nil {
			return err
		}
	}
	return v.correctDays(ctx, objects(doc["history"]))
}

// correctDays makes the processed and failed counts of days (of one queue:
// daily stats, or queue snapshots, which are of today) count jobs: failed
// is the jobs that failed for good, processed those plus the jobs that
// completed. asynq's counts are of attempts, so its error rate was the
// failed attempts' share (one job failing on its third attempt: 3 of 3).
func (v *View) correctDays(ctx context.Context, days []map[string]any) error {
	if len(days) == 0 {
		return nil
	}
	q, _ := days[0]["queue"].(string)
	dates := make([]time.Time, len(days))
	for i, d := range days {
		dates[i] = time.Now()
		if s, ok := d["date"].(string); ok {
			t, err := time.Parse("2006-01-02", s)
			if err != nil {
				return fmt.Errorf("queue %s: date %q: %w", q, s, err)
			}
			dates[i] = t
		} else if s, ok := d["timestamp"].(string); ok {
			if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
				dates[i] = t
			}
		}
	}
	failed, err := v.o.FailedOnDays(ctx, q, dates)
	if err != nil {
		return err
	}
	for i, d := range days {
		succeeded, _ := number(d["succeeded"])
		d["failed"] = failed[i]
		d["processed"] = succeeded + failed[i]
	}
	return nil
}

// correctTask shows t (a task in state, unless it names its own) in errand's
// words: attempts begun of those allowed, as rdb's Inspector counts them
// for the CLI and the API, and the job type's timeout. A type errand does
// not know keeps asynq's figures.
func (v *View) correctTask(t map[string]any, state string) {
	if s, ok := t["state"].(string); ok {
		state = s
	}
	typ, _ := t["type"].(string)
	def, err := v.o.Registry.Lookup(typ)
	if err != nil {
		return
	}
	if retried, ok := number(t["retried"]); ok {
		// asynq's retried is the failures that counted; an attempt running
		// or finished is one more.
		attempts := retried
		switch state {
		case "active", "archived", "completed":
			attempts++
		}
		if !def.Unbounded && attempts > def.MaxAttempts {
			attempts = def.MaxAttempts
		}
		t["retried"] = attempts
	}
	if _, ok := t["max_retry"]; ok {
		if def.Unbounded {
			t["max_retry"] = "unlimited"
		} else {
			t["max_retry"] = def.MaxAttempts
		}
	}
	if _, ok := t["timeout_seconds"]; ok {
		t["timeout_seconds"] = int(def.Timeout / time.Second)
	}
}

// objects are the JSON objects in x, a JSON array (none for anything else).
func objects(x any) []map[string]any {
	arr, _ := x.([]any)
	out := make([]map[string]any, 0, len(arr))
	for _, e := range arr {
		if m, ok := e.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

func number(x any) (int, bool) {
	switch n := x.(type) {
	case json.Number:
		i, err := n.Int64()
		return int(i), err == nil
	case int:
		return n, true
	}
	return 0, false
}

// Result is how the dashboard shows a job's stored result: errand's jobs
// store none, which asynqmon calls "non-printable bytes"; text is shown as
// it is, anything else by its size.
func Result(_ string, b []byte) string {
	if len(b) == 0 {
		return "none"
	}
	if utf8.Valid(b) && strings.IndexFunc(string(b), func(r rune) bool { return !unicode.IsPrint(r) && !unicode.IsSpace(r) }) < 0 {
		return string(b)
	}
	return fmt.Sprintf("%d bytes, not text", len(b))
}
