package outbound

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/errandhq/errand"
)

func TestCheckClassifies(t *testing.T) {
	for _, tc := range []struct {
		status int
		header map[string]string
		class  errand.Class
		wait   time.Duration
	}{
		{200, nil, -1, 0},
		{201, nil, -1, 0},
		{400, nil, errand.Permanent, 0},
		{401, nil, errand.Permanent, 0},
		{404, nil, errand.Permanent, 0},
		{422, nil, errand.Permanent, 0},
		{429, map[string]string{"Retry-After": "7"}, errand.Throttled, 7 * time.Second},
		{429, nil, errand.Throttled, time.Minute},
		{503, map[string]string{"Retry-After": "2"}, errand.Throttled, 2 * time.Second},
		{503, nil, errand.Transient, 0},
		{500, nil, errand.Transient, 0},
		{502, nil, errand.Transient, 0},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("User-Agent") != UserAgent {
				t.Errorf("User-Agent %q", r.Header.Get("User-Agent"))
			}
			for k, v := range tc.header {
				w.Header().Set(k, v)
			}
			w.WriteHeader(tc.status)
			_, _ = w.Write([]byte(`{"errors":[{"code":"x","message":"y"}]}`))
		}))
		resp, err := New(srv.URL, time.Second).R().Get("/x")
		got := Check("svc", "get x", resp, err, time.Minute)
		srv.Close()
		if tc.class == -1 {
			if got != nil {
				t.Errorf("%d: %v", tc.status, got)
			}
			continue
		}
		class, wait := errand.ClassOf(got)
		if got == nil || class != tc.class || wait != tc.wait {
			t.Errorf("HTTP %d: class %v wait %s (err %v), want %v %s", tc.status, class, wait, got, tc.class, tc.wait)
		}
	}
}

func TestNetworkErrorIsTransientAndNotRetried(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		time.Sleep(300 * time.Millisecond)
	}))
	defer srv.Close()
	resp, err := New(srv.URL, 50*time.Millisecond).R().Get("/slow")
	got := Check("svc", "slow", resp, err, 0)
	if c, _ := errand.ClassOf(got); got == nil || c != errand.Transient {
		t.Fatalf("timeout: %v", got)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("the client retried by itself: %d calls", n)
	}
}

func TestRetryAfterDate(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := http.Header{"Retry-After": {now.Add(90 * time.Second).Format(http.TimeFormat)}}
	if d, ok := RetryAfter(h, now); !ok || d != 90*time.Second {
		t.Fatalf("%s %v", d, ok)
	}
}
