package jobs

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/outbound"
	"github.com/errandhq/errand/internal/queue"
	"github.com/errandhq/errand/internal/store"
	"github.com/go-resty/resty/v2"
)

// CallbackType is the job that reports a job's outcome to the callback URL
// given with POST /api/jobs.
const CallbackType = "ops:callback"

// Outcome is how a job ended, as reported to its callback URL: the payload of
// ops:callback.
type Outcome struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	State    string `json:"state"` // completed | failed
	Attempts int    `json:"attempts"`
	Error    string `json:"error,omitempty"`
}

// Kind implements job.Args.
func (Outcome) Kind() string { return CallbackType }

// Defaults implements job.Args.
func (Outcome) Defaults() job.Defaults {
	return job.Defaults{Queue: "default", MaxAttempts: 5, Timeout: 30 * time.Second,
		Backoff: []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute}}
}

// Validate implements job.Validator.
func (o Outcome) Validate() error {
	if o.ID == "" || (o.State != "completed" && o.State != "failed") {
		return fmt.Errorf("id and state (completed or failed) are required")
	}
	return nil
}

// Callbacks queues the reports of finished jobs that asked for one: the
// failure policy's CallBack.
type Callbacks struct {
	reg    *job.Registry
	client *queue.Client
}

// NewCallbacks returns a reporter that queues ops:callback jobs of reg
// through client.
func NewCallbacks(reg *job.Registry, client *queue.Client) *Callbacks {
	return &Callbacks{reg: reg, client: client}
}

// Report queues the callback of a finished job. The callback's id is derived
// from the job's, so a job reported twice (a worker lost after finishing it)
// calls back once.
func (c *Callbacks) Report(ctx context.Context, end queue.Ending) error {
	o := Outcome{ID: end.ID, Type: end.Type, State: end.State, Attempts: end.Attempts}
	if end.State == "failed" {
		o.Error = end.Error
	}
	def, err := c.reg.Lookup(CallbackType)
	if err != nil {
		return err
	}
	payload, err := json.Marshal(o)
	if err != nil {
		return err
	}
	now := time.Now()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err = c.client.Enqueue(ctx, job.Envelope{ID: "callback-" + o.ID + "-" + o.State, Type: CallbackType,
		Queue: def.Queue, Payload: payload, QueuedAt: now, DueAt: now})
	if errors.Is(err, queue.ErrDuplicate) {
		return nil
	}
	return err
}

// callback posts outcomes through the guarded client (public addresses
// only, unless api.allow_private_callbacks).
type callback struct {
	store  store.Store
	secret string // api.callback_secret
	http   *resty.Client
}

// newCallback needs no settings to start: without api.callback_secret,
// `errand serve` takes no callback_url, so the worker has nothing to send;
// a callback recorded anyway (a serve configured otherwise) fails for good,
// saying why.
func newCallback(d Deps) (*callback, error) {
	return &callback{store: d.Store, secret: d.Config.API.CallbackSecret,
		http: outbound.NewGuarded(15*time.Second, d.Config.API.AllowPrivateCallbacks)}, nil
}

// Work POSTs {"id","type","state","attempts","error"?} to the job's
// callback_url with X-Errand-Callback-Token and X-Errand-Signature:
// t=<unix>,v1=hex(HMAC-SHA256(api.callback_secret, t + "." + body)). The key
// is errand's own, never sent, so a receiver knows the call came from errand
// and not from someone who saw a callback token. The URL and token come from
// the database; they never travel through a queue. The URL was chosen by a
// caller of the API, so it goes through the guarded client: public addresses
// only, no redirects, and nothing of the answer but its status.
func (h *callback) Work(ctx context.Context, o Outcome) error {
	target, token, err := h.store.Callback(ctx, o.ID)
	if errors.Is(err, store.ErrNotFound) {
		return errand.Permanentf("callback: no callback recorded for job %s", o.ID)
	}
	if err != nil {
		return err
	}
	if h.secret == "" {
		return errand.Permanentf("callback: api.callback_secret is not set on the worker; callbacks are not sent unsigned")
	}
	body, err := json.Marshal(o)
	if err != nil {
		return errand.PermanentError(err)
	}
	ts := time.Now().Unix()
	resp, err := h.http.R().SetContext(ctx).
		SetHeader("Content-Type", "application/json").
		SetHeader("X-Errand-Callback-Token", token).
		SetHeader("X-Errand-Signature", Signature(h.secret, ts, body)).
		SetBody(body).
		Post(target)
	if errors.Is(err, outbound.ErrPrivateAddress) {
		// Only the host the caller gave: the address it resolved to and
		// why it was refused stay inside errand.
		host := "the callback host"
		if u, perr := url.Parse(target); perr == nil && u.Hostname() != "" {
			host = u.Hostname()
		}
		return errand.Permanentf("callback: %s resolves to a private address; refused", host)
	}
	return outbound.CheckGuarded("callback", "POST outcome", resp, err, time.Minute)
}

// Signature is the X-Errand-Signature of a callback body sent at unix time
// ts: "t=<ts>,v1=<hex(HMAC-SHA256(secret, ts + "." + body))>".
func Signature(secret string, ts int64, body []byte) string {
	t := strconv.FormatInt(ts, 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(t + "."))
	mac.Write(body)
	return "t=" + t + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}
