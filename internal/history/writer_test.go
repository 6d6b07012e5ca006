package history_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/history"
	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/rdb"
	"github.com/errandhq/errand/internal/store"
	"github.com/errandhq/errand/internal/store/pgtest"
	"github.com/errandhq/errand/jobs"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

var backends = []struct {
	name string
	url  func(testing.TB) string
}{
	{"sqlite", func(t testing.TB) string { return "file:" + filepath.Join(t.TempDir(), "errand.db") }},
	{"postgres", pgtest.URL},
}

func open(t testing.TB, url string) store.Store {
	t.Helper()
	st, err := store.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}

func registry(t testing.TB) *job.Registry {
	cfg, err := config.Load("", false, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := job.NewRegistry(cfg)
	jobs.Register(reg)
	if err := reg.Configure(cfg.Jobs); err != nil {
		t.Fatal(err)
	}
	return reg
}

func fetched(id string, retried int) *rdb.Fetched {
	return &rdb.Fetched{Queue: "emails", ID: id, Msg: rdb.Message{ID: id, Type: "user:welcome_email", Queue: "emails",
		Payload: []byte(`{"user_id":42,"email":"ada@shop.test","first_name":"Ada","password":"hunter2"}`), Retried: retried}}
}

// A final failure is in the failed list when Failed returns, with its
// entity, attempts and every attempt's error, its payload masked; attempts
// that completed are written by Close at the latest.
func TestWriterRecordsAttemptsAndFinalFailures(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			st := open(t, b.url(t))
			w := history.NewWriter(st, registry(t), slog.New(slog.NewTextHandler(io.Discard, nil)))
			w.Retry(fetched("J1", 0), "smtp: 451 busy")
			w.Retry(fetched("J1", 1), "smtp: 451 busy")
			w.Failed(fetched("J1", 2), "smtp: 550 no such user")
			l, err := st.FailedJobs(ctx, store.FailedFilter{})
			if err != nil {
				t.Fatal(err)
			}
			if len(l) != 1 || l[0].Entity != "user:42" || l[0].Attempts != 3 || l[0].MaxAttempts != 3 || len(l[0].History) != 3 ||
				l[0].History[2].Error != "smtp: 550 no such user" || l[0].Error != "smtp: 550 no such user" {
				t.Fatalf("failed list: %+v", l)
			}
			if l[0].Payload == "" || string(l[0].RunPayload) == l[0].Payload {
				t.Fatalf("the shown payload is not masked: %s", l[0].Payload)
			}
			var queued []job.Envelope
			for i := range 100 {
				queued = append(queued, job.Envelope{ID: fmt.Sprintf("D%03d", i), Type: "user:welcome_email", Queue: "emails",
					Payload: []byte(`{}`), Entity: "user:43", QueuedAt: farFuture.Add(-time.Hour), DueAt: farFuture.Add(-time.Hour)})
			}
			if err := st.RecordQueued(ctx, queued); err != nil {
				t.Fatal(err)
			}
			for i := range 100 {
				w.Done(fetched(fmt.Sprintf("D%03d", i), 0))
			}
			w.Close()
			tl, err := st.Timeline(ctx, "user:43")
			if err != nil || len(tl) != 100 {
				t.Fatalf("timeline: %d jobs, %v", len(tl), err)
			}
			for _, j := range tl {
				if j.State != "completed" || len(j.Attempts) != 1 || j.Attempts[0].Error != "" {
					t.Fatalf("a job done: %+v", j)
				}
			}
		})
	}
}

// BenchmarkWriter is the cost the history adds to each job a worker runs:
// one completed attempt handed to the writer, written in batches — of a job
// queued through errand (its history row updated: "queued") and of one
// queued by another program, as the bench's drain does (no row to update).
func BenchmarkWriter(b *testing.B) {
	for _, be := range backends {
		for _, withRows := range []bool{true, false} {
			name := be.name + "/queued"
			if !withRows {
				name = be.name + "/foreign"
			}
			b.Run(name, func(b *testing.B) {
				st := open(b, be.url(b))
				w := history.NewWriter(st, registry(b), slog.New(slog.NewTextHandler(io.Discard, nil)))
				js := make([]*rdb.Fetched, 1000)
				var es []job.Envelope
				for i := range js {
					js[i] = fetched(fmt.Sprintf("J%04d", i), 0)
					es = append(es, job.Envelope{ID: js[i].ID, Type: "user:welcome_email", Queue: "emails", Payload: []byte(`{}`),
						Entity: "user:42", QueuedAt: time.Now(), DueAt: time.Now()})
				}
				if withRows {
					if err := st.RecordQueued(context.Background(), es); err != nil {
						b.Fatal(err)
					}
				}
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					i := 0
					for pb.Next() {
						w.Done(js[i%len(js)])
						i++
					}
				})
				w.Close() // every attempt written
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "attempts/s")
			})
		}
	}
}

var farFuture = time.Now().Add(24 * time.Hour)
