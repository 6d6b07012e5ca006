package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/store/pgtest"
	"github.com/jackc/pgx/v5"
)

// Scale-out on PostgreSQL: two `errand serve` and two `errand worker`
// processes on one database and one Redis. 2,000 registrations and webhooks,
// each delivered to both serves at once — the same email (in another case),
// the same orders/paid event, the same tracking callback — give every side
// effect exactly once in the fakes: one welcome email, one staff message and
// one CRM contact per user, one fulfillment push and one tracking sync per
// order. The dedupe holds across the two serves, and the two relays and two
// workers run each job once.
func TestTwoServesTwoWorkersShareOnePostgres(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	s := startStack(t, stackOptions{postgres: true, serves: 2, workers: 2, toml: welcomeAtOnce})
	s.sandbox.Shopify.AutoCreateOrders(true)
	// A Shopify Plus store's cost bucket (20,000 points, 1,000 a second):
	// on the standard plan's 2,000 and 100 a second, Shopify itself would
	// take over a minute for 900 tracking syncs, and this test is about
	// the database, not Shopify's limit (TestShopifyCostBucketSharedBetweenWorkers covers that).
	s.sandbox.Shopify.SetBucket(20_000, 1_000, 0)
	t.Logf("2 serves and 2 workers up in %s", time.Since(t0).Round(time.Millisecond))
	const users, orders = 200, 900 // 200 + 900 orders/paid + 900 tracking = 2,000
	const firstOrder = 5_100_000_000

	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	// send POSTs body to serve i; a 503 (too many sign-ups hashing at once)
	// is retried as its Retry-After asks.
	send := func(i int, path string, body []byte, header http.Header) (int, map[string]any, error) {
		for {
			req, err := http.NewRequest("POST", s.bases[i]+path, bytes.NewReader(body))
			if err != nil {
				return 0, nil, err
			}
			req.Header = header.Clone()
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				return 0, nil, err
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable {
				time.Sleep(200 * time.Millisecond)
				continue
			}
			var out map[string]any
			_ = json.Unmarshal(raw, &out)
			return resp.StatusCode, out, nil
		}
	}
	// both delivers one request to both serves at once and returns what
	// each answered.
	type answer struct {
		status int
		body   map[string]any
	}
	both := func(path string, bodies [2][]byte, header http.Header) ([2]answer, error) {
		var out [2]answer
		var errs [2]error
		var wg sync.WaitGroup
		for i := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out[i].status, out[i].body, errs[i] = send(i, path, bodies[i], header)
			}()
		}
		wg.Wait()
		if errs[0] != nil {
			return out, errs[0]
		}
		return out, errs[1]
	}

	shopSecret, trackSecret := s.services.Shopify.WebhookSecret, s.services.Fulfill.CallbackSecret
	var tasks []func() error
	for i := range users {
		email := fmt.Sprintf("user%03d@shop.test", i)
		tasks = append(tasks, func() error {
			a, err := both("/api/users", [2][]byte{mustJSON(registration(email)), mustJSON(registration(strings.ToUpper(email)))}, http.Header{})
			if err != nil {
				return err
			}
			if got := []int{a[0].status, a[1].status}; !(got[0] == 201 && got[1] == 409 || got[0] == 409 && got[1] == 201) {
				return fmt.Errorf("registering %s on both serves: %v, want one 201 and one 409", email, got)
			}
			return nil
		})
	}
	for i := range orders {
		id := int64(firstOrder + i)
		order := orderPaidBody(id)
		tracking := fmt.Appendf(nil, `{"order_no":"%d","tracking_number":"1ZPG%06d","carrier":"UPS"}`, id, i)
		tasks = append(tasks, func() error {
			h := http.Header{"X-Shopify-Hmac-Sha256": {shopifySign(shopSecret, order)}, "X-Shopify-Event-Id": {fmt.Sprint("evt-", id)}, "X-Shopify-Topic": {"orders/paid"}}
			a, err := both("/webhooks/shopify/orders-paid", [2][]byte{order, order}, h)
			if err != nil {
				return err
			}
			if err := onceQueued("orders/paid", id, a[0].status, a[0].body, a[1].status, a[1].body); err != nil {
				return err
			}
			now := strconv.FormatInt(time.Now().Unix(), 10)
			h = http.Header{"X-Timestamp": {now}, "X-Signature": {callbackSign(trackSecret, now, tracking)}}
			a, err = both("/webhooks/fulfillment/tracking", [2][]byte{tracking, tracking}, h)
			if err != nil {
				return err
			}
			return onceQueued("tracking", id, a[0].status, a[0].body, a[1].status, a[1].body)
		})
	}
	// Registrations spread among the orders, so bcrypt's work overlaps the
	// webhooks'.
	for i := range tasks {
		j := (i * 7919) % len(tasks)
		tasks[i], tasks[j] = tasks[j], tasks[i]
	}
	t1 := time.Now()
	work := make(chan func() error)
	var failed sync.Once
	var firstErr error
	var wg sync.WaitGroup
	for range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for task := range work {
				if err := task(); err != nil {
					failed.Do(func() { firstErr = err })
				}
			}
		}()
	}
	for _, task := range tasks {
		work <- task
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	t.Logf("%d requests to two serves in %s", 2*(users+2*orders), time.Since(t1).Round(time.Millisecond))

	// Every side effect, as the fakes saw it.
	count := func() (welcome, staff, contacts, pushes, synced int) {
		welcome = len(s.smtp.Messages())
		staff = len(s.sandbox.Slack.Messages())
		contacts = len(s.sandbox.Tidio.Contacts())
		pushes = len(s.sandbox.Fulfillment.Orders())
		for i := range orders {
			for _, f := range s.sandbox.Shopify.Fulfillments(int64(firstOrder + i)) {
				synced += len(f.TrackingInfo)
			}
		}
		return
	}
	for deadline := time.Now().Add(75 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		w, st, c, p, sy := count()
		if w >= users && st >= users && c >= users && p >= orders && sy >= orders {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 75 s: welcome emails %d, staff messages %d, CRM contacts %d (want %d each); fulfillment pushes %d, tracking syncs %d (want %d each)",
				w, st, c, users, p, sy, orders)
		}
	}
	t.Logf("every side effect %s after the first request", time.Since(t1).Round(time.Millisecond))
	time.Sleep(2 * time.Second) // a job run twice would show now

	w, st, c, p, sy := count()
	if w != users || st != users || c != users || p != orders || sy != orders {
		t.Fatalf("welcome emails %d, staff messages %d, CRM contacts %d (want %d each); fulfillment pushes %d, tracking syncs %d (want %d each)",
			w, st, c, users, p, sy, orders)
	}
	for i := range users {
		email := fmt.Sprintf("user%03d@shop.test", i)
		if n := len(s.mailTo(email)); n != 1 {
			t.Fatalf("%d welcome emails to %s", n, email)
		}
	}
	pushed := map[string]int{}
	for _, o := range s.sandbox.Fulfillment.Orders() {
		pushed[fmt.Sprint(o["platformOrderId"])]++
	}
	for i := range orders {
		id := int64(firstOrder + i)
		if pushed[fmt.Sprint(id)] != 1 {
			t.Fatalf("order %d pushed %d times", id, pushed[fmt.Sprint(id)])
		}
		if f := s.sandbox.Shopify.Fulfillments(id); len(f) != 1 || len(f[0].TrackingInfo) != 1 || f[0].TrackingInfo[0].Number != fmt.Sprintf("1ZPG%06d", i) {
			t.Fatalf("order %d's fulfillments on Shopify: %+v", id, f)
		}
	}
	ctx := context.Background()
	if n, _, err := s.db().OutboxBacklog(ctx); err != nil || n != 0 {
		t.Fatalf("outbox backlog %d (%v)", n, err)
	}
	if n, err := s.db().CountUsers(ctx); err != nil || n != users {
		t.Fatalf("%d users in the database (%v), want %d", n, err, users)
	}
	if f := s.failed(); len(f) != 0 {
		t.Fatalf("failed jobs: %v", f)
	}
	// The database's password is in no process's log.
	for i, l := range append(append([]*syncBuffer(nil), s.serveLogs...), s.workLogs...) {
		if strings.Contains(l.String(), pgtest.Start(t).Password()) {
			t.Fatalf("process %d logged the database password", i)
		}
	}
}

// onceQueued checks that of one delivery to both serves, one queued the job
// and the other answered it was a duplicate.
func onceQueued(what string, id int64, s0 int, b0 map[string]any, s1 int, b1 map[string]any) error {
	got := []string{fmt.Sprint(s0, " ", b0["status"]), fmt.Sprint(s1, " ", b1["status"])}
	if (got[0] == "200 queued" && got[1] == "200 duplicate") || (got[0] == "200 duplicate" && got[1] == "200 queued") {
		return nil
	}
	return fmt.Errorf("%s of order %d on both serves: %v, want one queued and one duplicate", what, id, got)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// Behind PgBouncer in transaction mode a LISTEN cannot hold: with
// database.poll_only, errand serve keeps no LISTEN session, and a
// registration's jobs still reach the worker. Without it, serve listens.
func TestPollOnlyServeHoldsNoListenAndStillRelays(t *testing.T) {
	t.Parallel()
	for _, pollOnly := range []bool{false, true} {
		t.Run(fmt.Sprint("poll_only=", pollOnly), func(t *testing.T) {
			s := startStack(t, stackOptions{postgres: true, pollOnly: pollOnly, toml: welcomeAtOnce})
			ctx := context.Background()
			conn, err := pgx.Connect(ctx, s.dbURL)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			listening := func() int {
				var n int
				if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'`).Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}
			if status, out := s.post("/api/users", registration("ada@shop.test"), nil); status != http.StatusCreated {
				t.Fatalf("register: %d %v", status, out)
			}
			s.waitFor(15*time.Second, "the welcome email", func() bool { return len(s.mailTo("ada@shop.test")) == 1 })
			if pollOnly {
				if n := listening(); n != 0 {
					t.Fatalf("%d LISTEN sessions with poll_only", n)
				}
				return
			}
			s.waitFor(10*time.Second, "serve's LISTEN session", func() bool { return listening() == 1 })
		})
	}
}

// An unreachable PostgreSQL stops serve, worker and migrate at start with
// one line naming database.url, its password masked.
func TestUnreachablePostgresIsOneLineNamingTheSetting(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	config := dir + "/config.toml"
	if err := os.WriteFile(config, []byte(servicesTOML(t, testServices("http://127.0.0.1:1"))+"\n[api]\ntokens = [\""+firstToken+"\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"ERRAND_DATABASE__URL=postgres://errand:hunter2-secret@" + freeAddr(t) + "/errand", "ERRAND_REDIS__ADDR=" + freeAddr(t)}
	for _, cmd := range []string{"serve", "worker", "migrate"} {
		var out syncBuffer
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := run(ctx, []string{cmd, "--config", config}, env, &out, &out)
		cancel()
		if err == nil {
			t.Fatalf("errand %s started without its database", cmd)
		}
		msg := err.Error()
		if !strings.Contains(msg, "database.url") || strings.Contains(msg, "hunter2") || strings.Contains(out.String(), "hunter2") || strings.Contains(msg, "\n") {
			t.Fatalf("errand %s: want one line naming database.url without the password, got %q (log %q)", cmd, msg, out.String())
		}
	}
}
