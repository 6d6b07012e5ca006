package store_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/store"
	"github.com/errandhq/errand/internal/store/pgtest"
)

// A relay in one process hears of jobs another process commits (NOTIFY from
// the inserting transaction, delivered at commit), and of nothing a
// rolled-back change wrote.
func TestPostgresCommittedJobsWakeOtherProcesses(t *testing.T) {
	url := pgtest.URL(t)
	writer, relay := openMigrated(t, url), openMigrated(t, url)
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	wakes := 0
	woken := make(chan struct{}, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		relay.WatchOutbox(ctx, func() {
			mu.Lock()
			wakes++
			mu.Unlock()
			woken <- struct{}{}
		}, func(err error) { t.Errorf("listening failed: %v", err) })
	}()
	defer func() { cancel(); <-done }()
	wait := func(what string) {
		t.Helper()
		select {
		case <-woken:
		case <-time.After(10 * time.Second):
			t.Fatalf("no wake-up %s", what)
		}
	}
	wait("once listening")
	if err := writer.CreateUser(context.Background(), &store.User{Email: "a@shop.test", FirstName: "A", LastName: "L", PasswordHash: "x"}, oneJob("J1")); err != nil {
		t.Fatal(err)
	}
	wait("after a committed registration")
	// A shipment whose job cannot be written (its id is taken): rolled
	// back, and no relay is woken for it.
	err := writer.SaveShipment(context.Background(), &store.Shipment{OrderID: 1, TrackingNumber: "1Z"}, func(*store.Shipment) ([]job.Envelope, error) {
		return []job.Envelope{envelope("J2"), envelope("J1")}, nil
	})
	if err == nil {
		t.Fatal("a job with a taken id was saved")
	}
	if err := writer.SaveOrder(context.Background(), "e1", &store.Order{ID: 7, Payload: "{}"}, []job.Envelope{envelope("J3")}); err != nil {
		t.Fatal(err)
	}
	wait("after a committed order")
	// Notifications arrive in commit order: one from the rolled-back
	// shipment would have come before the order's.
	mu.Lock()
	defer mu.Unlock()
	if wakes != 3 {
		t.Fatalf("%d wake-ups, want 3 (listening, the registration, the order)", wakes)
	}
}

// An unreachable PostgreSQL, or a URL that is not one, stops errand with one
// line naming database.url, the password masked.
func TestPostgresURLErrorsNameTheSettingWithoutThePassword(t *testing.T) {
	for _, url := range []string{
		"postgres://errand:s3cret-pw@127.0.0.1:1/errand?sslmode=disable&connect_timeout=5",
		"postgres://errand:s3cret-pw@127.0.0.1:1/errand", // tried with TLS, then without
		"postgresql://errand:s3cret-pw@127.0.0.1:notaport/errand",
		"postgres://errand@127.0.0.1:1/errand?password=s3cret-pw&sslmode=disable",
	} {
		_, err := store.Open(url)
		if err == nil {
			t.Fatalf("%s opened", url)
		}
		msg := err.Error()
		t.Log(msg)
		if !strings.Contains(msg, "database.url") || strings.Contains(msg, "s3cret") {
			t.Errorf("want one line naming database.url without the password: %q", msg)
		}
		if strings.Contains(msg, "\n") {
			t.Errorf("more than one line: %q", msg)
		}
	}
}

func TestMaskURL(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://errand:pw@db:5432/errand?sslmode=require": "postgres://errand:xxxxx@db:5432/errand?sslmode=require",
		"postgres://db/errand?password=pw&user=u":             "postgres://db/errand?password=xxxxx&user=u",
		"postgres://errand@db/errand":                         "postgres://errand@db/errand",
		"postgres://errand:p%w@db:bad/x":                      "postgres://errand:xxxxx@db:bad/x",
	} {
		if got := store.MaskURL(in); got != want {
			t.Errorf("MaskURL(%q) = %q, want %q", in, got, want)
		}
	}
}
