// Package sandbox serves the local stand-ins for the services errand calls on
// one address: the fakes beside each service's client (slacktest,
// telegramtest, tidiotest, fulfillmenttest, shopifytest), which speak the
// real wire formats and check the same headers and signatures the real ones
// check. `errand sandbox` serves it for people; the tests use it too. Around
// every fake it adds what no real service offers: failures injected while it
// runs ("the next 3 Tidio calls answer 500", "Shopify throttles", "add 2 s of
// latency"), and a list of every call received, at /_sandbox/.
package sandbox

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/fulfillment/fulfillmenttest"
	"github.com/errandhq/errand/internal/shopify/shopifytest"
	"github.com/errandhq/errand/internal/slack/slacktest"
	"github.com/errandhq/errand/internal/telegram/telegramtest"
	"github.com/errandhq/errand/internal/tidio/tidiotest"
)

// A Fake is one service's stand-in, as its …test package provides it.
type Fake interface {
	// Service names it in faults and the call log ("tidio").
	Service() string
	// Routes maps each ServeMux pattern the fake answers ("POST /contacts")
	// to its handler, which gets the request's body already read and returns
	// the status it answered and a note for the call log.
	Routes() map[string]func(w http.ResponseWriter, r *http.Request, body []byte) (status int, note string)
}

// A throttler answers "slow down" the way its service does. A fake without
// one is throttled with HTTP 429 and Retry-After: 1.
type throttler interface {
	Throttle(w http.ResponseWriter) (status int)
}

// Fault is a failure injected into one service's next calls.
type Fault struct {
	Service string `json:"service"`
	// Call limits the fault to one kind of call: a method ("POST"), a
	// method and path ("POST /contacts"), or a route as the fake names it
	// ("PATCH /contacts/{id}"); empty = every call to the service.
	Call string `json:"call,omitempty"`
	// Status answers with this HTTP status instead of doing the work (e.g.
	// 500, 429, 401). With Status 429 or 503, RetryAfter (seconds) is sent as
	// the Retry-After header when set.
	Status     int `json:"status,omitempty"`
	RetryAfter int `json:"retry_after,omitempty"`
	// Throttle makes the service answer the way it throttles (Shopify: HTTP
	// 200 with a THROTTLED error; Telegram: 429 with parameters.retry_after;
	// others: 429).
	Throttle bool `json:"throttle,omitempty"`
	// DropResponse does the work, then closes the connection without an
	// answer: the caller cannot tell it succeeded (a lost response).
	DropResponse bool `json:"drop_response,omitempty"`
	// Latency delays the answer.
	Latency time.Duration `json:"latency,omitempty"`
	// Count is how many calls the fault applies to; 0 = until cleared.
	Count int `json:"count,omitempty"`
	// For is how long the fault lasts from the first call it applies to
	// (a service throttling for the rest of its rate window); 0 = no end.
	For time.Duration `json:"for,omitempty"`

	until time.Time // when a fault with For ends, set at its first call
}

// Call is one request the sandbox received.
type Call struct {
	At      time.Time `json:"at"`
	Service string    `json:"service"`
	Method  string    `json:"method"`
	Path    string    `json:"path"`
	Status  int       `json:"status"`
	Request string    `json:"request"`
	Note    string    `json:"note,omitempty"`
}

// Sandbox serves fakes with fault injection and a call log.
type Sandbox struct {
	// The fakes New serves, to seed and inspect in tests; nil in a sandbox
	// made by Of.
	Slack       *slacktest.Fake
	Telegram    *telegramtest.Fake
	Tidio       *tidiotest.Fake
	Fulfillment *fulfillmenttest.Fake
	Shopify     *shopifytest.Fake

	fakes []Fake
	mux   *http.ServeMux

	mu     sync.Mutex
	faults []*Fault
	calls  []Call
}

// New returns a sandbox of every service errand calls, taking the
// credentials in cfg and refusing others, as each service would.
func New(cfg *config.Config) *Sandbox {
	var hooks, chats []string
	for _, id := range slices.Sorted(maps.Keys(cfg.Notify.Reps)) {
		hooks = append(hooks, cfg.Notify.Reps[id].SlackWebhookURL)
		chats = append(chats, cfg.Notify.Reps[id].TelegramChatID)
	}
	s := &Sandbox{
		Slack:       slacktest.New(hooks...),
		Telegram:    telegramtest.New(cfg.Notify.TelegramBotToken, chats...),
		Tidio:       tidiotest.New(cfg.CRM),
		Fulfillment: fulfillmenttest.New(cfg.Fulfill),
		Shopify:     shopifytest.New(cfg.Shopify),
	}
	// The one list of the services the sandbox fakes: a new service's fake
	// is a field above and an entry here.
	s.serve(s.Slack, s.Telegram, s.Tidio, s.Fulfillment, s.Shopify)
	return s
}

// Of returns a sandbox of fakes alone: a service's own tests use it to inject
// failures into their fake.
func Of(fakes ...Fake) *Sandbox {
	s := &Sandbox{}
	s.serve(fakes...)
	return s
}

func (s *Sandbox) serve(fakes ...Fake) {
	s.fakes = fakes
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /_sandbox/", s.page)
	s.mux.HandleFunc("GET /_sandbox/calls", s.listCalls)
	s.mux.HandleFunc("POST /_sandbox/faults", s.addFault)
	s.mux.HandleFunc("DELETE /_sandbox/faults", s.clearFaults)
	s.mux.HandleFunc("DELETE /_sandbox/calls", s.clearCalls)
	for _, f := range fakes {
		for pattern, h := range f.Routes() {
			s.handle(f, pattern, h)
		}
	}
}

// Services names the services served, in the sandbox's order.
func (s *Sandbox) Services() []string {
	names := make([]string, len(s.fakes))
	for i, f := range s.fakes {
		names[i] = f.Service()
	}
	return names
}

// Handler serves every fake and the control endpoints.
func (s *Sandbox) Handler() http.Handler { return s.mux }

// handle routes pattern to fake's handler h: injected faults and latency
// apply first, and the call is recorded.
func (s *Sandbox) handle(fake Fake, pattern string, h func(w http.ResponseWriter, r *http.Request, body []byte) (status int, note string)) {
	service := fake.Service()
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 4<<20))
		call := Call{At: time.Now(), Service: service, Method: r.Method, Path: r.URL.Path, Request: trim(string(body), 2000)}
		f := s.takeFault(service, r.Method, r.Method+" "+r.URL.Path, pattern)
		if f != nil && f.Latency > 0 {
			time.Sleep(f.Latency)
		}
		switch {
		case f != nil && f.Status != 0:
			if f.RetryAfter > 0 {
				w.Header().Set("Retry-After", fmt.Sprint(f.RetryAfter))
			}
			http.Error(w, fmt.Sprintf(`{"errors":[{"code":"injected","message":"sandbox: injected HTTP %d"}]}`, f.Status), f.Status)
			call.Status, call.Note = f.Status, "injected failure"
		case f != nil && f.Throttle:
			call.Status, call.Note = throttle(fake, w), "injected throttling"
		case f != nil && f.DropResponse:
			rec := &discard{header: http.Header{}}
			call.Status, call.Note = h(rec, r, body)
			call.Note = strings.TrimSpace(call.Note + " (response dropped)")
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					_ = conn.Close()
				}
			}
		default:
			call.Status, call.Note = h(w, r, body)
		}
		s.mu.Lock()
		s.calls = append(s.calls, call)
		if len(s.calls) > 1000 {
			s.calls = s.calls[len(s.calls)-1000:]
		}
		s.mu.Unlock()
	})
}

// AddFault injects f.
func (s *Sandbox) AddFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
}

// ClearFaults removes every injected fault.
func (s *Sandbox) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// takeFault returns the first fault of service whose Call is empty or one of
// calls (the request's method, method and path, and route), counting it.
func (s *Sandbox) takeFault(service string, calls ...string) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	s.faults = slices.DeleteFunc(s.faults, func(f *Fault) bool { return !f.until.IsZero() && !now.Before(f.until) })
	for i, f := range s.faults {
		if f.Service != service || f.Call != "" && !slices.Contains(calls, f.Call) {
			continue
		}
		if f.For > 0 && f.until.IsZero() {
			f.until = now.Add(f.For)
		}
		out := *f
		if f.Count > 0 {
			f.Count--
			if f.Count == 0 {
				s.faults = append(s.faults[:i], s.faults[i+1:]...)
			}
		}
		return &out
	}
	return nil
}

// Calls returns the calls received, oldest first, of one service or all.
func (s *Sandbox) Calls(service string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.calls {
		if service == "" || c.Service == service {
			out = append(out, c)
		}
	}
	return out
}

func (s *Sandbox) listCalls(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, 200, s.Calls(r.URL.Query().Get("service")))
}

func (s *Sandbox) addFault(w http.ResponseWriter, r *http.Request) {
	var f struct {
		Fault
		Latency string `json:"latency"`
		For     string `json:"for"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&f); err != nil {
		writeJSON(w, 400, map[string]string{"error": "malformed JSON: " + err.Error()})
		return
	}
	if services := s.Services(); !slices.Contains(services, f.Service) {
		writeJSON(w, 422, map[string]string{"error": "service must be one of " + strings.Join(services, ", ")})
		return
	}
	if f.Latency != "" {
		d, err := time.ParseDuration(f.Latency)
		if err != nil {
			writeJSON(w, 422, map[string]string{"error": "latency must be a duration like 2s"})
			return
		}
		f.Fault.Latency = d
	}
	if f.For != "" {
		d, err := time.ParseDuration(f.For)
		if err != nil || d <= 0 {
			writeJSON(w, 422, map[string]string{"error": "for must be a duration like 60s"})
			return
		}
		f.Fault.For = d
	}
	if f.Status == 0 && !f.Throttle && !f.DropResponse && f.Fault.Latency == 0 {
		writeJSON(w, 422, map[string]string{"error": "give status, throttle, drop_response or latency"})
		return
	}
	s.AddFault(f.Fault)
	writeJSON(w, 201, f.Fault)
}

func (s *Sandbox) clearFaults(w http.ResponseWriter, r *http.Request) {
	s.ClearFaults()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Sandbox) clearCalls(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.calls = nil
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>errand sandbox</title><meta http-equiv="refresh" content="3">
<style>body{font-family:system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse;width:100%;font-size:13px}
td,th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}td.req{font-family:monospace;max-width:600px;word-break:break-all}
.bad{color:#b00}.note{color:#666}</style></head><body>
<h1>errand sandbox</h1>
<p>Local fakes of {{.Services}}. Inject a failure:
<code>curl -X POST localhost:8090/_sandbox/faults -d '{"service":"tidio","status":500,"count":3}'</code>;
clear them: <code>curl -X DELETE localhost:8090/_sandbox/faults</code>.</p>
<h2>Active faults</h2>
{{if .Faults}}<ul>{{range .Faults}}<li>{{.Service}}{{if .Call}} {{.Call}}{{end}}: {{if .Status}}HTTP {{.Status}}{{end}}{{if .Throttle}}throttle{{end}}{{if .DropResponse}}drop response{{end}}{{if .Latency}} +{{.Latency}}{{end}}{{if .Count}} × {{.Count}}{{else if .For}} for {{.For}}{{else}} until cleared{{end}}</li>{{end}}</ul>{{else}}<p>none</p>{{end}}
<h2>Calls received ({{len .Calls}})</h2>
<table><tr><th>time</th><th>service</th><th>request</th><th>status</th><th>body</th></tr>
{{range .Calls}}<tr><td>{{.At.Format "15:04:05.000"}}</td><td>{{.Service}}</td><td>{{.Method}} {{.Path}}</td>
<td {{if ge .Status 400}}class="bad"{{end}}>{{.Status}} <span class="note">{{.Note}}</span></td><td class="req">{{.Request}}</td></tr>{{end}}
</table></body></html>`))

func (s *Sandbox) page(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	calls := append([]Call(nil), s.calls...)
	var faults []Fault
	for _, f := range s.faults {
		faults = append(faults, *f)
	}
	s.mu.Unlock()
	for i, j := 0, len(calls)-1; i < j; i, j = i+1, j-1 {
		calls[i], calls[j] = calls[j], calls[i]
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = pageTmpl.Execute(w, map[string]any{"Calls": calls, "Faults": faults, "Services": strings.Join(s.Services(), ", ")})
}

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func trim(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// throttle answers "slow down" as fake's service does.
func throttle(fake Fake, w http.ResponseWriter) int {
	if t, ok := fake.(throttler); ok {
		return t.Throttle(w)
	}
	w.Header().Set("Retry-After", "1")
	http.Error(w, `{"errors":[{"code":"too_many_requests","message":"slow down"}]}`, http.StatusTooManyRequests)
	return http.StatusTooManyRequests
}

// discard is a ResponseWriter that throws the answer away (DropResponse).
type discard struct{ header http.Header }

func (d *discard) Header() http.Header         { return d.header }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}
