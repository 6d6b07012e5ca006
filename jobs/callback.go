package jobs

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/outbound"
	"github.com/errandhq/errand/internal/queue"
	"github.com/errandhq/errand/internal/store"
)

type callback struct{ Deps }

// Work POSTs {"id","type","state","attempts","error"?} to the job's
// callback_url with X-Errand-Callback-Token, signed: X-Errand-Signature =
// hex(HMAC-SHA256(callback_token, X-Errand-Timestamp + "." + body)), so the
// receiver can check the body too. The URL and token come from the database;
// they never travel through a queue.
func (h *callback) Work(ctx context.Context, o queue.Outcome) error {
	url, token, err := h.Store.Callback(ctx, o.ID)
	if errors.Is(err, store.ErrNotFound) {
		return errand.Permanentf("callback: no callback recorded for job %s", o.ID)
	}
	if err != nil {
		return err
	}
	body, err := json.Marshal(o)
	if err != nil {
		return errand.PermanentError(err)
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, []byte(token))
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	resp, err := outbound.New("", 15*time.Second).R().SetContext(ctx).
		SetHeader("Content-Type", "application/json").
		SetHeader("X-Errand-Callback-Token", token).
		SetHeader("X-Errand-Timestamp", ts).
		SetHeader("X-Errand-Signature", hex.EncodeToString(mac.Sum(nil))).
		SetBody(body).
		Post(url)
	return outbound.Check("callback", "POST outcome of "+o.ID, resp, err, time.Minute)
}
