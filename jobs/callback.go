package jobs

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/outbound"
	"github.com/errandhq/errand/internal/queue"
	"github.com/errandhq/errand/internal/store"
)

type callback struct{ Deps }

// Work POSTs {"id","type","state","attempts","error"?} to the job's
// callback_url with X-Errand-Callback-Token and X-Errand-Signature:
// t=<unix>,v1=hex(HMAC-SHA256(api.callback_secret, t + "." + body)). The key
// is errand's own, never sent, so a receiver knows the call came from errand
// and not from someone who saw a callback token. The URL and token come from
// the database; they never travel through a queue. The URL was chosen by a
// caller of the API, so it goes through the guarded client: public addresses
// only, no redirects, and nothing of the answer but its status.
func (h *callback) Work(ctx context.Context, o queue.Outcome) error {
	target, token, err := h.Store.Callback(ctx, o.ID)
	if errors.Is(err, store.ErrNotFound) {
		return errand.Permanentf("callback: no callback recorded for job %s", o.ID)
	}
	if err != nil {
		return err
	}
	secret := h.Config.API.CallbackSecret
	if secret == "" {
		return errand.Permanentf("callback: api.callback_secret is not set on the worker; callbacks are not sent unsigned")
	}
	body, err := json.Marshal(o)
	if err != nil {
		return errand.PermanentError(err)
	}
	ts := time.Now().Unix()
	resp, err := outbound.NewGuarded(15*time.Second, h.Config.API.AllowPrivateCallbacks).R().SetContext(ctx).
		SetHeader("Content-Type", "application/json").
		SetHeader("X-Errand-Callback-Token", token).
		SetHeader("X-Errand-Signature", Signature(secret, ts, body)).
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
