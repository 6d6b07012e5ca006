package schedule

import (
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/job"
)

// report is a job type with a payload to check.
type report struct {
	Format string `json:"format"`
}

func (report) Kind() string { return "test:report" }
func (report) Defaults() job.Defaults {
	return job.Defaults{Queue: "default"}
}

func (r report) Validate() error {
	if r.Format != "" && r.Format != "pdf" && r.Format != "csv" {
		return errString("format: must be pdf or csv")
	}
	return nil
}

type errString string

func (e errString) Error() string { return string(e) }

func registry(t *testing.T) *job.Registry {
	t.Helper()
	reg := job.NewRegistry(config.Default())
	job.Register[report](reg, nil)
	if err := reg.Configure(nil); err != nil {
		t.Fatal(err)
	}
	return reg
}

// A bad entry stops the worker with one line naming each key to fix.
func TestParseNamesTheKeyOfEveryMistake(t *testing.T) {
	reg := registry(t)
	for _, c := range []struct {
		entry config.Schedule
		want  string
	}{
		{config.Schedule{Every: time.Minute}, "schedule[1].type: must name a job type"},
		{config.Schedule{Type: "test:nope", Every: time.Minute}, `schedule[1].type: unknown job type "test:nope"`},
		{config.Schedule{Type: "test:report"}, "schedule[1].cron: give cron"},
		{config.Schedule{Type: "test:report", Cron: "0 2 * * *", Every: time.Hour}, "schedule[1].every: give cron or every, not both"},
		{config.Schedule{Type: "test:report", Cron: "0 2 * *"}, `schedule[1].cron: "0 2 * *" has 4 fields`},
		{config.Schedule{Type: "test:report", Cron: "0 2 * * * *"}, "has 6 fields"},
		{config.Schedule{Type: "test:report", Cron: "61 2 * * *"}, `schedule[1].cron: "61 2 * * *"`},
		{config.Schedule{Type: "test:report", Cron: "0 2 * * *", Timezone: "Mars/Olympus"}, `schedule[1].timezone: "Mars/Olympus" is not a time zone`},
		{config.Schedule{Type: "test:report", Every: 1500 * time.Millisecond}, "schedule[1].every: must be whole seconds, at least 1s (got 1.5s)"},
		{config.Schedule{Type: "test:report", Every: time.Minute, Timezone: "UTC"}, "schedule[1].timezone: applies to cron only"},
		{config.Schedule{Type: "test:report", Every: time.Minute, Payload: map[string]any{"format": "doc"}}, "schedule[1].payload: invalid payload: format: must be pdf or csv"},
		{config.Schedule{Type: "test:report", Every: time.Minute, Name: "a b"}, `schedule[1].name: "a b" may hold only`},
	} {
		_, err := Parse([]config.Schedule{c.entry}, reg)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%+v: got %v, want one line with %q", c.entry, err, c.want)
		}
	}
	_, err := Parse([]config.Schedule{{Type: "test:report", Every: time.Minute}, {Type: "test:report", Cron: "0 2 * * *"}}, reg)
	if err == nil || !strings.Contains(err.Error(), `schedule[2].name: "test:report" is also schedule[1]'s name`) {
		t.Errorf("two unnamed entries of one type: %v", err)
	}
}

func TestParseKeepsTheTypesPayload(t *testing.T) {
	es, err := Parse([]config.Schedule{
		{Type: "test:report", Every: time.Minute},
		{Name: "nightly-report", Type: "test:report", Cron: "0 2 * * *", Timezone: "Europe/Berlin", Payload: map[string]any{"format": "csv", "extra": 1}},
	}, registry(t))
	if err != nil {
		t.Fatal(err)
	}
	if es[0].Name != "test:report" || string(es[0].Payload) != `{"format":""}` || es[0].Queue != "default" {
		t.Errorf("first entry: %+v %s", es[0], es[0].Payload)
	}
	// Fields the type does not know are dropped, as for `errand enqueue`.
	if es[1].Name != "nightly-report" || string(es[1].Payload) != `{"format":"csv"}` || es[1].Location.String() != "Europe/Berlin" {
		t.Errorf("second entry: %+v %s", es[1], es[1].Payload)
	}
}

// Every ticks at multiples of its interval from the Unix epoch, so every
// worker computes the same ticks; cron is read in its time zone, across a
// daylight-saving change too.
func TestTicks(t *testing.T) {
	es, err := Parse([]config.Schedule{
		{Type: "test:report", Every: 5 * time.Minute},
		{Name: "nightly", Type: "test:report", Cron: "30 2 * * *", Timezone: "Europe/Berlin"},
	}, registry(t))
	if err != nil {
		t.Fatal(err)
	}
	every, nightly := es[0], es[1]
	at := time.Date(2026, 3, 28, 10, 7, 13, 0, time.UTC)
	if got, want := every.Next(at), time.Date(2026, 3, 28, 10, 10, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("every 5m after %s: %s, want %s", at, got, want)
	}
	if got := every.Next(time.Date(2026, 3, 28, 10, 10, 0, 0, time.UTC)); !got.Equal(time.Date(2026, 3, 28, 10, 15, 0, 0, time.UTC)) {
		t.Errorf("every 5m after a tick: %s", got)
	}
	berlin, _ := time.LoadLocation("Europe/Berlin")
	// 2026-10-25 is the fall-back night in Berlin: 02:30 happens twice and
	// runs once, the first time (summer time); the next run is a day later.
	first := nightly.Next(time.Date(2026, 10, 24, 12, 0, 0, 0, berlin))
	if want := time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC); !first.Equal(want) {
		t.Errorf("nightly on the fall-back night: %s, want %s", first.UTC(), want)
	}
	if got, want := nightly.Next(first), time.Date(2026, 10, 26, 1, 30, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("nightly after the fall-back night's run: %s, want %s", got.UTC(), want)
	}
	if got := nightly.Next(time.Date(2026, 3, 28, 1, 29, 0, 0, time.UTC)); !got.Equal(time.Date(2026, 3, 28, 1, 30, 0, 0, time.UTC)) {
		t.Errorf("nightly 02:30 Berlin (UTC+1 in winter) is 01:30 UTC: got %s", got.UTC())
	}
	// A catch-up is bounded: at most limit ticks, the latest.
	ticks := every.ticks(at.Add(-time.Hour), at, 3)
	if len(ticks) != 3 || !ticks[2].Equal(time.Date(2026, 3, 28, 10, 5, 0, 0, time.UTC)) || !ticks[0].Equal(time.Date(2026, 3, 28, 9, 55, 0, 0, time.UTC)) {
		t.Errorf("ticks: %v", ticks)
	}
	if id := every.JobID(ticks[2]); id != "test:report@2026-03-28T10:05:00Z" {
		t.Errorf("job id %q", id)
	}
}
