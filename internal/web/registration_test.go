package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/outbox"
	"github.com/errandhq/errand/internal/redistest"
	"github.com/errandhq/errand/internal/store"
	"github.com/errandhq/errand/jobs"
)

const webTestToken = "web-test-token-0123456789"

// webStack is errand's HTTP side over a real SQLite database and a real
// redis-server, with the password hash and its gate chosen by the test. Its
// relay is not run, so queued jobs stay in the outbox to be counted.
type webStack struct {
	t     *testing.T
	url   string
	store store.Store
}

func startWebStack(t *testing.T, hash func(string) (string, error), gate *hashGate) *webStack {
	t.Helper()
	rd := redistest.Start(t)
	cfg, err := config.Load("", false, nil, map[string]any{
		"redis.addr": rd.Addr(), "redis.password": rd.Password(), "api.tokens": []string{webTestToken},
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open("file:" + filepath.Join(t.TempDir(), "errand.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := job.NewRegistry(cfg)
	jobs.Register(reg)
	if err := reg.Configure(cfg.Jobs); err != nil {
		t.Fatal(err)
	}
	h, closeDash := New(&Server{Config: cfg, Store: st, Registry: reg, Relay: outbox.NewRelay(st, nil, log),
		Redis: rd.Client(), Log: log, hash: hash, hashGate: gate})
	srv := httptest.NewServer(h)
	t.Cleanup(func() { srv.Close(); _ = closeDash() })
	return &webStack{t: t, url: srv.URL, store: st}
}

func (s *webStack) do(method, path, body string, header ...string) (*http.Response, map[string]any) {
	s.t.Helper()
	req, _ := http.NewRequest(method, s.url+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	// A bounded wait turns a request stuck behind a hash into a failure, not
	// a hung test.
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		s.t.Errorf("%s %s: %v", method, path, err)
		return &http.Response{}, nil
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &out)
	return resp, out
}

func (s *webStack) register(email string) (*http.Response, map[string]any) {
	return s.do("POST", "/api/users", fmt.Sprintf(`{"email":%q,"first_name":"Ada","last_name":"Lovelace","password":"correct horse battery"}`, email))
}

// The attacker re-registers an existing address over and over: each repeat is
// answered 409 without a single bcrypt hash.
func TestRegisteringATakenEmailRunsNoBcrypt(t *testing.T) {
	var hashes atomic.Int32
	s := startWebStack(t, func(pw string) (string, error) {
		hashes.Add(1)
		return hashPassword(pw)
	}, nil)
	if resp, out := s.register("ada@shop.test"); resp.StatusCode != http.StatusCreated {
		t.Fatalf("first registration: %d %v", resp.StatusCode, out)
	}
	for _, email := range []string{"ada@shop.test", "ADA@Shop.Test", " ada@shop.test "} {
		resp, out := s.register(email)
		if resp.StatusCode != http.StatusConflict {
			t.Fatalf("repeat %q: %d %v, want 409", email, resp.StatusCode, out)
		}
	}
	if n := hashes.Load(); n != 1 {
		t.Fatalf("bcrypt ran %d times, want once (for the first registration only)", n)
	}
	if n, _ := s.store.CountUsers(context.Background()); n != 1 {
		t.Fatalf("%d users stored, want 1", n)
	}
}

// Two sign-ups of one address at the same moment both pass the early check;
// the unique index still lets only one in, and the other gets 409.
func TestRacingRegistrationsOfOneEmailStoreOneUser(t *testing.T) {
	inHash := make(chan struct{}, 2)
	release := make(chan struct{})
	s := startWebStack(t, func(string) (string, error) {
		inHash <- struct{}{}
		<-release
		return "$2a$10$not-a-real-hash", nil
	}, &hashGate{slots: make(chan struct{}, 2), queue: make(chan struct{}, 2), wait: time.Minute})
	codes := make(chan int, 2)
	for range 2 {
		go func() {
			resp, _ := s.register("race@shop.test")
			codes <- resp.StatusCode
		}()
	}
	<-inHash
	<-inHash // both are past the early check
	close(release)
	got := map[int]int{}
	for range 2 {
		got[<-codes]++
	}
	if got[http.StatusCreated] != 1 || got[http.StatusConflict] != 1 {
		t.Fatalf("answers %v, want one 201 and one 409", got)
	}
	if n, _ := s.store.CountUsers(context.Background()); n != 1 {
		t.Fatalf("%d users stored, want 1", n)
	}
}

// A flood of sign-ups fills every bcrypt slot and the queue behind them; the
// next sign-up is told to come back (503 + Retry-After) instead of piling up,
// and the job API and health check answer as usual, since they take no slot.
func TestRegistrationFloodGets503AndSparesTheRest(t *testing.T) {
	gate := &hashGate{slots: make(chan struct{}, 2), queue: make(chan struct{}, 1), wait: 100 * time.Millisecond}
	var hashes atomic.Int32
	inHash := make(chan struct{}, 10)
	release := make(chan struct{})
	s := startWebStack(t, func(string) (string, error) {
		hashes.Add(1)
		inHash <- struct{}{}
		<-release // a hash that never ends while the flood lasts
		return "$2a$10$not-a-real-hash", nil
	}, gate)
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // frees the hashes if the test fails half-way
	var flood sync.WaitGroup
	floodCodes := make(chan int, 3)
	for i := range 2 {
		flood.Go(func() {
			resp, _ := s.register(fmt.Sprintf("flood%d@shop.test", i))
			floodCodes <- resp.StatusCode
		})
	}
	<-inHash
	<-inHash // every slot is busy

	resp, out := s.register("one-more@shop.test")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("sign-up with every bcrypt slot busy: %d Retry-After=%q %v, want 503 with Retry-After",
			resp.StatusCode, resp.Header.Get("Retry-After"), out)
	}
	if resp, _ := s.do("GET", "/healthz", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz during the flood: %d", resp.StatusCode)
	}
	resp, out = s.do("POST", "/api/jobs", `{"type":"ops:noop","payload":{}}`, "Authorization", "Bearer "+webTestToken)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /api/jobs during the flood: %d %v", resp.StatusCode, out)
	}
	unblock()
	flood.Wait()
	close(floodCodes)
	for code := range floodCodes {
		if code != http.StatusCreated {
			t.Fatalf("a sign-up holding a slot ended %d, want 201", code)
		}
	}
	if n := hashes.Load(); n != 2 {
		t.Fatalf("bcrypt ran %d times, want 2 (the refused sign-up must not hash)", n)
	}
	if n, _ := s.store.CountUsers(context.Background()); n != 2 {
		t.Fatalf("%d users stored, want 2 (the refused sign-up stores nothing)", n)
	}
	// The slots are free again: a later sign-up goes through.
	if resp, out := s.register("later@shop.test"); resp.StatusCode != http.StatusCreated {
		t.Fatalf("sign-up after the flood: %d %v", resp.StatusCode, out)
	}
}

// A request waiting for a slot gets one when a hash ends within the wait.
func TestHashGateQueuesBrieflyThenRefuses(t *testing.T) {
	g := &hashGate{slots: make(chan struct{}, 1), queue: make(chan struct{}, 1), wait: time.Hour}
	rel, ok := g.acquire(context.Background())
	if !ok {
		t.Fatal("the first caller got no slot")
	}
	got := make(chan bool)
	go func() {
		r, ok := g.acquire(context.Background())
		if ok {
			r()
		}
		got <- ok
	}()
	// Wait until the second caller is queued, then a third finds the queue full.
	for len(g.queue) == 0 {
		time.Sleep(time.Millisecond)
	}
	if _, ok := g.acquire(context.Background()); ok {
		t.Fatal("a caller beyond the queue got a slot")
	}
	rel()
	if !<-got {
		t.Fatal("the queued caller got no slot after the first released it")
	}
	ctx, cancel := context.WithCancel(context.Background())
	rel, _ = g.acquire(context.Background())
	defer rel()
	cancel()
	if _, ok := g.acquire(ctx); ok {
		t.Fatal("a caller that left still got a slot")
	}
}

// The gate's size follows the CPUs errand may use.
func TestHashGateIsSizedToTheCPUs(t *testing.T) {
	g := newHashGate()
	if want := runtime.GOMAXPROCS(0); cap(g.slots) != want {
		t.Fatalf("%d bcrypt slots for %d CPUs, want %d", cap(g.slots), runtime.GOMAXPROCS(0), want)
	}
}

// Names that would split a Slack message or a CRM field, or read backwards,
// are refused, in registration and in the profile change alike.
func TestNamesWithHiddenCharactersAreRefused(t *testing.T) {
	bad := []string{
		"Ada\r\nInjected", "Ada\nInjected", "Ada\tX", "Ada\x00", "Ada\x1b[31m", "Ada\u0085X",
		"Ada\u202Etxt.exe", "Ada\u202A", "Ada\u2066X", "Ada\u2069", "Ada\u200EX", "Ada\u200F", "Ada\u061CX",
		"Ada\u2028X", "Ada\u2029X", "Ada\uFEFFX", "Ada\u200BX", "Ada\U000E0041X",
	}
	for _, v := range bad {
		for _, field := range []string{"first_name", "last_name", "sales_rep"} {
			r := registration{Email: "a@shop.test", FirstName: "Ada", LastName: "Lovelace", Password: "correct horse", SalesRep: "alice"}
			p := profileChange{}
			switch field {
			case "first_name":
				r.FirstName, p.FirstName = v, &v
			case "last_name":
				r.LastName, p.LastName = v, &v
			case "sales_rep":
				r.SalesRep, p.SalesRep = v, &v
			}
			if f := r.Valid(); f[field] == "" {
				t.Errorf("registration with %s %q: accepted", field, v)
			}
			if f := p.Valid(); f[field] == "" {
				t.Errorf("profile change with %s %q: accepted", field, v)
			}
		}
	}
	if f := (&registration{Email: "ada\u202Egpj.exe@shop.test", FirstName: "Ada", LastName: "L", Password: "correct horse"}).Valid(); f["email"] == "" {
		t.Error("an email with a bidi override was accepted")
	}
	// Names as people write them still pass, joiners included.
	for _, v := range []string{"Ada", "Zoë O'Brien-Smith", "محمد", "می\u200Cخواهم", "क्\u200Dष", "李小龙", "José María"} {
		r := registration{Email: "a@shop.test", FirstName: v, LastName: v, Password: "correct horse", SalesRep: v}
		if f := r.Valid(); len(f) > 0 {
			t.Errorf("name %q refused: %v", v, f)
		}
	}
}
