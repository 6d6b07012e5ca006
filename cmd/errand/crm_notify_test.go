package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/sandbox"
	"github.com/errandhq/errand/internal/slack/slacktest"
	"github.com/errandhq/errand/internal/telegram/telegramtest"
	"github.com/errandhq/errand/internal/tidio/tidiotest"
)

// crmNotifyRetries runs the CRM and notification jobs' attempts a second
// apart.
const crmNotifyRetries = `
[jobs."user:sync_crm"]
backoff = ["1s"]
[jobs."user:notify_staff"]
backoff = ["1s"]
` + escalateRetries

// sideEffect is one service errand calls from a job, as these tests drive it.
type sideEffect struct {
	service  string // the sandbox fake
	jobType  string
	payload  string
	opts     stackOptions
	done     func(s *stack) bool // the side effect is visible in the fake
	throttle sandbox.Fault       // the fault that makes the service say "slow down"
	told     time.Duration       // the wait the service asks for with it
}

const newCustomer = `{"user_id":7,"email":"ada@shop.test","first_name":"Ada","last_name":"Lovelace","sales_rep":"bob"}`

var (
	slackSide = sideEffect{
		service: slacktest.Service, jobType: "user:notify_staff", payload: newCustomer,
		done:     func(s *stack) bool { return len(s.sandbox.Slack.Messages()) == 1 },
		throttle: sandbox.Fault{Service: slacktest.Service, Status: http.StatusTooManyRequests, RetryAfter: 2, Count: 1},
		told:     2 * time.Second,
	}
	telegramSide = sideEffect{
		service: telegramtest.Service, jobType: "user:notify_staff", payload: newCustomer,
		opts:     stackOptions{notifyKind: "telegram"},
		done:     func(s *stack) bool { return len(s.sandbox.Telegram.Messages()) == 1 },
		throttle: sandbox.Fault{Service: telegramtest.Service, Throttle: true, Count: 1},
		told:     telegramtest.RetryAfter * time.Second,
	}
	tidioSide = sideEffect{
		service: tidiotest.Service, jobType: "user:sync_crm",
		payload: `{"user_id":7,"email":"ada@shop.test","changed":{"email":"ada@shop.test","first_name":"Ada","last_name":"Lovelace"}}`,
		// Tidio's 429 names no wait: errand waits for its next minute window
		// by the answer's Date, which here says 57 s past the minute.
		opts: stackOptions{wrapFakes: func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Date", time.Now().UTC().Truncate(time.Minute).Add(57*time.Second).Format(http.TimeFormat))
				h.ServeHTTP(w, r)
			})
		}},
		done:     func(s *stack) bool { return len(s.sandbox.Tidio.Contacts()) == 1 },
		throttle: sandbox.Fault{Service: tidiotest.Service, Throttle: true, Count: 1},
		told:     3 * time.Second,
	}
)

func (e sideEffect) start(t *testing.T) *stack {
	o := e.opts
	o.toml += crmNotifyRetries
	return startStack(t, o)
}

// throttled: the service asks errand to slow down once; the job completes on
// its first attempt after waiting as told. asynq schedules retries in whole
// seconds and may start one up to a second before the wait errand gave it, so
// "as told" is to the second.
func (e sideEffect) throttled(t *testing.T) {
	s := e.start(t)
	s.sandbox.AddFault(e.throttle)
	id := s.enqueue(e.jobType, e.payload)
	s.waitThrottled(id, e.service, time.Second, e.told)
	if !e.done(s) {
		t.Fatal("the job completed but the fake saw no side effect")
	}
	if calls := s.sandbox.Calls(e.service); calls[0].Status != http.StatusTooManyRequests {
		t.Fatalf("calls: %+v", calls)
	}
	s.noSecrets()
}

// transient: the service answers 500 to every call; exactly 3 attempts, then
// one escalation.
func (e sideEffect) transient(t *testing.T) {
	s := e.start(t)
	s.sandbox.AddFault(sandbox.Fault{Service: e.service, Status: http.StatusInternalServerError})
	id := s.enqueue(e.jobType, e.payload)
	s.waitEscalated(id, 3, "transient", "HTTP 500")
	if n := len(s.sandbox.Calls(e.service)); n != 3 {
		t.Fatalf("the service was called %d times, want once per attempt (3)", n)
	}
	if n := len(s.worker.lines("job_id="+id, "will retry", "class=transient", "counts=true")); n != 2 {
		t.Fatalf("%d transient retries in the log, want 2", n)
	}
}

// permanent: the service answers 404; one attempt, then one escalation.
func (e sideEffect) permanent(t *testing.T) {
	s := e.start(t)
	s.sandbox.AddFault(sandbox.Fault{Service: e.service, Status: http.StatusNotFound})
	id := s.enqueue(e.jobType, e.payload)
	s.waitEscalated(id, 1, "permanent", "HTTP 404")
	if n := len(s.sandbox.Calls(e.service)); n != 1 {
		t.Fatalf("the service was called %d times, want once", n)
	}
}

func TestSlackTellsTheSalesRep(t *testing.T) {
	t.Parallel()
	s := slackSide.start(t)
	bob := s.enqueue("user:notify_staff", newCustomer)
	alice := s.enqueue("user:notify_staff", `{"user_id":8,"email":"grace@shop.test","first_name":"Grace","last_name":"<!channel> Hopper"}`)
	s.waitDone(bob)
	s.waitDone(alice)
	byHook := map[string]string{}
	for _, m := range s.sandbox.Slack.Messages() {
		byHook[m.Hook] = m.Text
	}
	if text := byHook["/services/T000/B000/bob"]; !strings.Contains(text, "Ada Lovelace") || !strings.Contains(text, "ada@shop.test") {
		t.Fatalf("bob's message names the wrong customer: %q (all: %v)", text, byHook)
	}
	// No sales_rep: notify.default_rep (alice) hears of it, and the customer's
	// name cannot ping the channel.
	if text := byHook["/services/T000/B000/alice"]; !strings.Contains(text, "Grace &lt;!channel&gt; Hopper") || !strings.Contains(text, "grace@shop.test") {
		t.Fatalf("alice's message: %q (all: %v)", text, byHook)
	}
	s.noSecrets()
}

func TestSlackThrottleUsesNoAttempt(t *testing.T)             { t.Parallel(); slackSide.throttled(t) }
func TestSlackOutageThreeAttemptsThenEscalation(t *testing.T) { t.Parallel(); slackSide.transient(t) }
func TestSlackRefusalEscalatesAfterOneAttempt(t *testing.T)   { t.Parallel(); slackSide.permanent(t) }

func TestTelegramTellsTheSalesRep(t *testing.T) {
	t.Parallel()
	s := telegramSide.start(t)
	s.waitDone(s.enqueue("user:notify_staff", newCustomer))
	msgs := s.sandbox.Telegram.Messages()
	if len(msgs) != 1 || msgs[0].ChatID != "1002" || !strings.Contains(msgs[0].Text, "Ada Lovelace") || !strings.Contains(msgs[0].Text, "ada@shop.test") {
		t.Fatalf("the bot sent %+v, want one message to bob's chat 1002 naming Ada Lovelace", msgs)
	}
	if n := len(s.sandbox.Slack.Messages()); n != 0 {
		t.Fatalf("notify.kind is telegram, yet %d Slack messages went out", n)
	}
	s.noSecrets()
}

func TestTelegramThrottleUsesNoAttempt(t *testing.T) { t.Parallel(); telegramSide.throttled(t) }
func TestTelegramOutageThreeAttemptsThenEscalation(t *testing.T) {
	t.Parallel()
	telegramSide.transient(t)
}
func TestTelegramRefusalEscalatesAfterOneAttempt(t *testing.T) {
	t.Parallel()
	telegramSide.permanent(t)
}

// A rep errand does not know can never be told: one attempt, no call.
func TestNotifyUnknownRepFailsAtOnce(t *testing.T) {
	t.Parallel()
	s := slackSide.start(t)
	id := s.enqueue("user:notify_staff", `{"user_id":9,"email":"ada@shop.test","first_name":"Ada","sales_rep":"carol"}`)
	s.waitEscalated(id, 1, "permanent", `unknown sales rep "carol"`)
	if n := len(s.sandbox.Calls("")); n != 0 {
		t.Fatalf("%d calls to the fakes", n)
	}
}

func TestTidioCreatesTheContact(t *testing.T) {
	t.Parallel()
	s := tidioSide.start(t)
	s.waitDone(s.enqueue("user:sync_crm", tidioSide.payload))
	contacts := s.sandbox.Tidio.Contacts()
	if len(contacts) != 1 || contacts[0]["email"] != "ada@shop.test" || contacts[0]["first_name"] != "Ada" || contacts[0]["last_name"] != "Lovelace" {
		t.Fatalf("contacts: %v", contacts)
	}
	var methods []string
	for _, c := range s.sandbox.Calls(tidiotest.Service) {
		methods = append(methods, c.Method)
	}
	if strings.Join(methods, ",") != "GET,POST" {
		t.Fatalf("calls %v, want the look-up by email, then the create", methods)
	}
	s.noSecrets()
}

func TestTidioThrottleUsesNoAttempt(t *testing.T)             { t.Parallel(); tidioSide.throttled(t) }
func TestTidioOutageThreeAttemptsThenEscalation(t *testing.T) { t.Parallel(); tidioSide.transient(t) }
func TestTidioRefusalEscalatesAfterOneAttempt(t *testing.T)   { t.Parallel(); tidioSide.permanent(t) }

// The create is done but its answer lost: the retry finds the contact by
// email and updates it instead of creating a second one.
func TestTidioCreateIsNotDuplicatedWhenTheResponseIsLost(t *testing.T) {
	t.Parallel()
	s := tidioSide.start(t)
	// The first call (the look-up) passes, only delayed a little; the second,
	// the create, is done and its answer dropped.
	s.sandbox.AddFault(sandbox.Fault{Service: tidiotest.Service, Latency: time.Millisecond, Count: 1})
	s.sandbox.AddFault(sandbox.Fault{Service: tidiotest.Service, DropResponse: true, Count: 1})
	id := s.enqueue("user:sync_crm", tidioSide.payload)
	if done := s.waitDone(id); !strings.Contains(done, "attempt=2 ") {
		t.Fatalf("want the job done on its second attempt: %s", done)
	}
	if contacts := s.sandbox.Tidio.Contacts(); len(contacts) != 1 {
		t.Fatalf("%d contacts, want 1: %v", len(contacts), contacts)
	}
	var calls []string
	for _, c := range s.sandbox.Calls(tidiotest.Service) {
		calls = append(calls, c.Method)
	}
	if strings.Join(calls, ",") != "GET,POST,GET,PATCH" {
		t.Fatalf("calls %v, want GET,POST (answer lost),GET,PATCH", calls)
	}
}

// A profile change sends Tidio only what changed.
func TestCRMPatchCarriesOnlyChangedFields(t *testing.T) {
	t.Parallel()
	s := tidioSide.start(t)
	cid := s.sandbox.Tidio.AddContact(map[string]string{"email": "ada@shop.test", "first_name": "Ada", "last_name": "Lovelace"})
	s.waitDone(s.enqueue("user:sync_crm",
		`{"user_id":7,"email":"ada@shop.test","changed":{"last_name":"X"},"contact":{"email":"ada@shop.test","first_name":"Ada","last_name":"X"}}`))
	var patches []sandbox.Call
	for _, c := range s.sandbox.Calls(tidiotest.Service) {
		switch c.Method {
		case http.MethodPatch:
			patches = append(patches, c)
		case http.MethodPost:
			t.Fatalf("an existing contact was created again: %+v", c)
		}
	}
	if len(patches) != 1 || patches[0].Path != "/contacts/"+cid {
		t.Fatalf("patches: %+v", patches)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(patches[0].Request), &body); err != nil {
		t.Fatal(err)
	}
	if len(body) != 1 || body["last_name"] != "X" {
		t.Fatalf("the PATCH carried %v, want only {\"last_name\":\"X\"}", body)
	}
	if c := s.sandbox.Tidio.Contacts()[0]; c["last_name"] != "X" || c["first_name"] != "Ada" {
		t.Fatalf("contact after the change: %v", c)
	}
}

// An email change whose answer was lost: the retry no longer finds the
// contact under the old address, finds it under the new one and does not
// create a second contact.
func TestCRMEmailChangeIsNotDuplicatedWhenTheResponseIsLost(t *testing.T) {
	t.Parallel()
	s := tidioSide.start(t)
	cid := s.sandbox.Tidio.AddContact(map[string]string{"email": "ada@shop.test", "first_name": "Ada"})
	s.sandbox.AddFault(sandbox.Fault{Service: tidiotest.Service, Latency: time.Millisecond, Count: 1})
	s.sandbox.AddFault(sandbox.Fault{Service: tidiotest.Service, DropResponse: true, Count: 1})
	id := s.enqueue("user:sync_crm",
		`{"user_id":7,"email":"ada@shop.test","changed":{"email":"ada@new.test"},"contact":{"email":"ada@new.test","first_name":"Ada"}}`)
	if done := s.waitDone(id); !strings.Contains(done, "attempt=2 ") {
		t.Fatalf("want the job done on its second attempt: %s", done)
	}
	contacts := s.sandbox.Tidio.Contacts()
	if len(contacts) != 1 || contacts[0]["id"] != cid || contacts[0]["email"] != "ada@new.test" {
		t.Fatalf("contacts: %v", contacts)
	}
	var calls []string
	for _, c := range s.sandbox.Calls(tidiotest.Service) {
		calls = append(calls, c.Method+" "+c.Path)
	}
	want := "GET /contacts,PATCH /contacts/" + cid + ",GET /contacts,GET /contacts,PATCH /contacts/" + cid
	if strings.Join(calls, ",") != want {
		t.Fatalf("calls %v, want %s", calls, want)
	}
}
