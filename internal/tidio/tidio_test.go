package tidio_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/sandbox"
	"github.com/errandhq/errand/internal/tidio"
	"github.com/errandhq/errand/internal/tidio/tidiotest"
)

const (
	clientID     = "tidio-client-id"
	clientSecret = "tidio-client-secret"
)

// fakeTidio is the fake project, with the sandbox's fault injection.
type fakeTidio struct {
	*tidiotest.Fake
	*sandbox.Sandbox
}

// fake starts a fake Tidio project, wrapped by wrap when given; the client
// uses secret.
func fake(t *testing.T, secret string, wrap func(http.Handler) http.Handler) (fakeTidio, *tidio.Client) {
	t.Helper()
	f := tidiotest.New(tidio.Config{ClientID: clientID, ClientSecret: clientSecret})
	sb := fakeTidio{f, sandbox.Of(f)}
	var h http.Handler = sb.Handler()
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := tidio.New(tidio.Config{BaseURL: srv.URL, ClientID: clientID, ClientSecret: secret}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return sb, c
}

func wantClass(t *testing.T, err error, want errand.Class) time.Duration {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want a %s one", want)
	}
	class, wait := errand.ClassOf(err)
	if class != want {
		t.Fatalf("class %s, want %s: %v", class, want, err)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Fatalf("the error shows the client secret: %v", err)
	}
	return wait
}

func TestCreateFindUpdate(t *testing.T) {
	sb, c := fake(t, clientSecret, nil)
	ctx := context.Background()
	if got, err := c.FindByEmail(ctx, "ada@shop.test"); err != nil || got != nil {
		t.Fatalf("find before create: %+v, %v", got, err)
	}
	id, err := c.Create(ctx, map[string]string{"email": "ada@shop.test", "first_name": "Ada", "last_name": "Lovelace"})
	if err != nil || id == "" {
		t.Fatalf("create: %q, %v", id, err)
	}
	got, err := c.FindByEmail(ctx, "ADA@shop.test")
	if err != nil || got == nil || got.ID != id || got.FirstName != "Ada" {
		t.Fatalf("find after create: %+v, %v", got, err)
	}
	if err := c.Update(ctx, id, map[string]string{"last_name": "King"}); err != nil {
		t.Fatal(err)
	}
	contacts := sb.Contacts()
	if len(contacts) != 1 || contacts[0]["last_name"] != "King" || contacts[0]["first_name"] != "Ada" {
		t.Fatalf("contacts after update: %v", contacts)
	}
}

func TestCreateNeverUpserts(t *testing.T) {
	sb, c := fake(t, clientSecret, nil)
	sb.AddContact(map[string]string{"email": "ada@shop.test"})
	_, err := c.Create(context.Background(), map[string]string{"email": "ada@shop.test", "first_name": "Ada"})
	wantClass(t, err, errand.Permanent)
	if !strings.Contains(err.Error(), "HTTP 422: contact_already_exists") {
		t.Fatalf("the error should carry Tidio's code: %v", err)
	}
	if n := len(sb.Contacts()); n != 1 {
		t.Fatalf("%d contacts", n)
	}
}

// Tidio's 429 names no wait: the client waits for the next minute window by
// Tidio's clock, here 57 s past the minute.
func TestThrottledWaitsForTheNextMinuteWindow(t *testing.T) {
	serverTime := time.Date(2026, 3, 1, 10, 4, 57, 0, time.UTC)
	sb, c := fake(t, clientSecret, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Date", serverTime.Format(http.TimeFormat))
			h.ServeHTTP(w, r)
		})
	})
	sb.AddFault(sandbox.Fault{Service: tidiotest.Service, Throttle: true, Count: 1})
	_, err := c.FindByEmail(context.Background(), "ada@shop.test")
	if wait := wantClass(t, err, errand.Throttled); wait != 3*time.Second {
		t.Fatalf("wait %s, want 3s: the window opens at 10:05:00", wait)
	}
}

func TestNextWindow(t *testing.T) {
	at := func(sec, ms int) time.Time { return time.Date(2026, 3, 1, 10, 4, sec, ms*1e6, time.UTC) }
	date := func(t time.Time) http.Header { return http.Header{"Date": {t.Format(http.TimeFormat)}} }
	for _, tc := range []struct {
		name string
		h    http.Header
		now  time.Time
		want time.Duration
	}{
		{"by Tidio's clock", date(at(40, 0)), at(10, 0), 20 * time.Second},
		{"at the minute", date(at(0, 0)), at(30, 0), time.Minute},
		{"by the local clock without Date", http.Header{}, at(15, 500), 44*time.Second + 500*time.Millisecond},
		{"at least a second", http.Header{}, at(59, 800), time.Second},
	} {
		if got := tidio.NextWindow(tc.h, tc.now); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestServerErrorIsTransient(t *testing.T) {
	sb, c := fake(t, clientSecret, nil)
	sb.AddFault(sandbox.Fault{Service: tidiotest.Service, Status: 500, Count: 1})
	_, err := c.FindByEmail(context.Background(), "ada@shop.test")
	wantClass(t, err, errand.Transient)
}

func TestRefusalsArePermanent(t *testing.T) {
	t.Run("wrong secret", func(t *testing.T) {
		_, c := fake(t, "not-the-secret", nil)
		_, err := c.FindByEmail(context.Background(), "ada@shop.test")
		wantClass(t, err, errand.Permanent)
		if !strings.Contains(err.Error(), "HTTP 401: unauthorized") {
			t.Fatalf("the error should carry Tidio's code: %v", err)
		}
	})
	t.Run("unknown contact", func(t *testing.T) {
		_, c := fake(t, clientSecret, nil)
		err := c.Update(context.Background(), "0b5e7c1e-0000-4000-8000-000000000000", map[string]string{"last_name": "X"})
		wantClass(t, err, errand.Permanent)
	})
	t.Run("invalid email", func(t *testing.T) {
		sb, c := fake(t, clientSecret, nil)
		_, err := c.Create(context.Background(), map[string]string{"email": "not an email"})
		wantClass(t, err, errand.Permanent)
		if n := len(sb.Contacts()); n != 0 {
			t.Fatalf("%d contacts", n)
		}
	})
}

// A look-up whose answer is lost is not sent again by the HTTP client: the
// job sees a transient failure and its retry is an attempt the policy
// counts. The sandbox sees each request once.
func TestLostLookupIsNotResent(t *testing.T) {
	sb, c := fake(t, clientSecret, nil)
	ctx := context.Background()
	if _, err := c.FindByEmail(ctx, "ada@shop.test"); err != nil { // leaves a connection to reuse
		t.Fatal(err)
	}
	sb.AddFault(sandbox.Fault{Service: tidiotest.Service, Call: "GET /contacts", DropResponse: true, Count: 1})
	_, err := c.FindByEmail(ctx, "ada@shop.test")
	wantClass(t, err, errand.Transient)
	if n := len(sb.Calls(tidiotest.Service)); n != 2 {
		t.Fatalf("%d calls, want 2: the lost look-up was sent again", n)
	}
}
