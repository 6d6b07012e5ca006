// Package outbound is the one HTTP client setup errand uses for every service
// it calls (Slack, Telegram, Tidio, the fulfillment gateway, Shopify): timeouts
// from config, a User-Agent, no client-level retries (they would hide attempts
// from the failure policy; not even net/http's own re-send, see once.go), and the one place where an HTTP status becomes an
// error class and a Retry-After header becomes a wait. URLs that a caller of
// errand chose (callbacks) go through NewGuarded instead (guard.go).
package outbound

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/errandhq/errand"
	"github.com/go-resty/resty/v2"
)

// UserAgent is sent with every outbound request.
const UserAgent = "errand/1 (+background jobs)"

// transport is shared by every outbound client, so that connections to a
// service are kept and reused across jobs: a transport per client would open
// a connection per job and leave each idle for 90 s.
var transport = func() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 32
	return t
}()

// New returns a client for one service's base URL. Requests time out after
// timeout (15 s when zero); nothing is retried here.
func New(baseURL string, timeout time.Duration) *resty.Client {
	if timeout <= 0 {
		timeout = 15 * time.Second
	}
	c := resty.NewWithClient(&http.Client{Transport: sendOnce{transport}}).
		SetBaseURL(strings.TrimRight(baseURL, "/")).
		SetTimeout(timeout).
		SetRetryCount(0).
		SetHeader("User-Agent", UserAgent).
		SetHeader("Accept", "application/json")
	c.SetLogger(quiet{})
	return c
}

type quiet struct{}

func (quiet) Errorf(string, ...any) {}
func (quiet) Warnf(string, ...any)  {}
func (quiet) Debugf(string, ...any) {}

// StatusError is a non-2xx answer.
type StatusError struct {
	Service string
	Op      string
	Status  int
	Body    string
}

func (e *StatusError) Error() string {
	body := strings.Join(strings.Fields(e.Body), " ")
	if len(body) > 300 {
		body = body[:300] + "…"
	}
	if body == "" {
		return fmt.Sprintf("%s: %s: HTTP %d", e.Service, e.Op, e.Status)
	}
	return fmt.Sprintf("%s: %s: HTTP %d: %s", e.Service, e.Op, e.Status, body)
}

// Check turns a call's outcome into nil (2xx) or an error with its class:
//   - no answer (network error, timeout): transient;
//   - 429, and 503 with Retry-After: throttled, waiting as Retry-After asks
//     (or fallback when it does not say);
//   - 400, 401, 402, 403, 404, 405, 409, 410, 422, 423: permanent;
//   - other 4xx: permanent; 5xx: transient.
func Check(service, op string, resp *resty.Response, err error, fallback time.Duration) error {
	if err != nil {
		return errand.TransientError(fmt.Errorf("%s: %s: %w", service, op, err))
	}
	code := resp.StatusCode()
	if code >= 200 && code < 300 {
		return nil
	}
	se := &StatusError{Service: service, Op: op, Status: code, Body: string(resp.Body())}
	return Classify(se, resp.Header(), fallback)
}

// Classify gives a StatusError its class; header is the answer's headers.
func Classify(se *StatusError, header http.Header, fallback time.Duration) error {
	switch code := se.Status; {
	case code == http.StatusTooManyRequests:
		wait, ok := RetryAfter(header, time.Now())
		if !ok {
			wait = fallback
		}
		return errand.ThrottledError(se, wait)
	case code == http.StatusServiceUnavailable:
		if wait, ok := RetryAfter(header, time.Now()); ok {
			return errand.ThrottledError(se, wait)
		}
		return errand.TransientError(se)
	case code >= 500:
		return errand.TransientError(se)
	case code == http.StatusRequestTimeout:
		return errand.TransientError(se)
	default:
		return errand.PermanentError(se)
	}
}

// RetryAfter reads a Retry-After header: seconds, or an HTTP date.
func RetryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil && secs >= 0 {
		return time.Duration(secs * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d, true
		}
		return 0, true
	}
	return 0, false
}

// IsStatus reports whether err is a StatusError with one of codes.
func IsStatus(err error, codes ...int) bool {
	var se *StatusError
	if !errors.As(err, &se) {
		return false
	}
	for _, c := range codes {
		if se.Status == c {
			return true
		}
	}
	return false
}

// CheckBaseURL says what is wrong with a service's base_url setting, or
// returns "" when it is an absolute http(s) URL. Config validation uses it,
// so a typo shows at start-up rather than as a failed job.
func CheckBaseURL(s string) string {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "must be a URL (" + err.Error() + ")"
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Sprintf("must be an http or https URL (got %q)", s)
	case u.Host == "":
		return fmt.Sprintf("must name a host (got %q)", s)
	}
	return ""
}
