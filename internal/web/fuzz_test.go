package web

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/fulfillment"
	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/outbound"
	"github.com/errandhq/errand/internal/shopify"
	"github.com/errandhq/errand/jobs"
)

// The webhook signature checks accept exactly the right signature, whatever
// the bytes.
func FuzzShopifyHMAC(f *testing.F) {
	f.Add([]byte(`{"id":820982911946154508,"email":"a@b.test"}`), "secret", "")
	f.Add([]byte{}, "", "%%%")
	f.Add([]byte("\x00\xff"), "k", "AAAA")
	f.Fuzz(func(t *testing.T, body []byte, secret, header string) {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write(body)
		right := base64.StdEncoding.EncodeToString(m.Sum(nil))
		if secret != "" && shopify.VerifyWebhook(secret, body, right) != nil {
			t.Fatal("the right signature was refused")
		}
		if secret == "" && shopify.VerifyWebhook(secret, body, right) == nil {
			t.Fatal("a webhook was accepted without a secret configured")
		}
		if shopify.VerifyWebhook(secret, body, header) == nil && header != right {
			if got, err := base64.StdEncoding.DecodeString(header); err != nil || !hmac.Equal(got, m.Sum(nil)) {
				t.Fatalf("a wrong signature %q was accepted", header)
			}
		}
	})
}

func FuzzTrackingCallback(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	f.Add([]byte(`{"order_no":"820982911946154508","tracking_number":"1Z9","carrier":"UPS","tracking_url":"https://ups.test/1Z9","shipped_at":"2026-11-23T10:00:00Z"}`), ts, "")
	f.Add([]byte(`{"order_no":-1}`), "abc", "zz")
	f.Add([]byte(`[`), "", "")
	f.Add([]byte(`null`), ts, "")
	f.Fuzz(func(t *testing.T, body []byte, timestamp, sig string) {
		m := hmac.New(sha256.New, []byte("s3cret"))
		m.Write([]byte(timestamp + "."))
		m.Write(body)
		right := hex.EncodeToString(m.Sum(nil))
		ok := fulfillment.VerifyCallback("s3cret", timestamp, body, sig, now) == nil
		if ok && sig != right {
			if got, err := hex.DecodeString(sig); err != nil || !hmac.Equal(got, m.Sum(nil)) {
				t.Fatalf("a wrong signature was accepted")
			}
		}
		var c trackingCallback
		if json.Unmarshal(body, &c) == nil && len(c.Valid()) == 0 {
			if id, err := strconv.ParseInt(c.OrderNo, 10, 64); err != nil || id <= 0 || c.TrackingNumber == "" {
				t.Fatalf("accepted an invalid callback: %+v", c)
			}
		}
	})
}

func FuzzOrderPaid(f *testing.F) {
	f.Add([]byte(`{"id":820982911946154508,"name":"#1001","email":"a@b.test"}`))
	f.Add([]byte(`{"id":"12"}`))
	f.Add([]byte(`{"id":1e400}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var o shopifyOrder
		_ = json.Unmarshal(body, &o)
		_, _ = strconv.ParseInt(o.ID.String(), 10, 64)
	})
}

func testRegistry(t testing.TB) *job.Registry {
	cfg, err := config.Load("", false, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := job.NewRegistry(cfg)
	jobs.Register(reg)
	if err := reg.Configure(nil); err != nil {
		t.Fatal(err)
	}
	return reg
}

// Every job type's payload decoder refuses what it cannot run, and what it
// accepts it can encode again.
func FuzzJobPayloads(f *testing.F) {
	reg := testRegistry(f)
	types := reg.Types()
	f.Add(uint8(0), []byte(`{}`))
	f.Add(uint8(1), []byte(`{"user_id":1,"email":"a@b.test","first_name":"A"}`))
	f.Add(uint8(2), []byte(`{"order_id":5}`))
	f.Add(uint8(3), []byte(`{"failures":[{"id":"x"}]}`))
	f.Add(uint8(4), []byte(`null`))
	f.Add(uint8(5), []byte(`{"email":"a@b.test","changed":{"last_name":"X"}}`))
	f.Fuzz(func(t *testing.T, which uint8, payload []byte) {
		typ := types[int(which)%len(types)]
		e, err := reg.PrepareRaw(typ, payload)
		if err != nil {
			return
		}
		if e.Type != typ || !json.Valid(e.Payload) {
			t.Fatalf("%s accepted a payload that is not JSON: %q", typ, payload)
		}
	})
}

func FuzzJobRequest(f *testing.F) {
	reg := testRegistry(f)
	f.Add([]byte(`{"type":"ops:noop","payload":{},"delay":"5s"}`))
	f.Add([]byte(`{"type":"user:welcome_email","payload":{"email":"x"},"delay":3.5,"queue":"emails"}`))
	f.Add([]byte(`{"type":"ops:noop","callback_url":"http://x","callback_token":"t"}`))
	f.Add([]byte(`{"type":"ops:noop","callback_url":"http://[::ffff:127.0.0.1]:8080/x"}`))
	f.Add([]byte(`null`))
	cfg := &config.Config{API: config.API{CallbackSecret: "callback-secret-0123456789"}}
	f.Fuzz(func(t *testing.T, body []byte) {
		var j jobRequest
		if json.Unmarshal(body, &j) != nil {
			return
		}
		j.reg, j.cfg = reg, cfg
		if len(j.Valid()) == 0 {
			if j.delay < 0 || j.delay > maxAPIDelay || internalTypes[j.Type] {
				t.Fatalf("accepted %s", body)
			}
			if j.CallbackURL != "" && outbound.CheckCallbackURL(j.CallbackURL, false) != nil {
				t.Fatalf("accepted a callback_url the guard refuses: %s", body)
			}
			if _, err := reg.PrepareRaw(j.Type, j.Payload); err != nil {
				t.Fatalf("accepted a request whose payload does not decode: %s: %v", body, err)
			}
		}
	})
}

func FuzzRegistration(f *testing.F) {
	f.Add([]byte(`{"email":"ada@shop.test","first_name":"Ada","last_name":"L","password":"correct horse"}`))
	f.Add([]byte(`{"email":"<a@b>","first_name":" ","password":"x"}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"email":"ada@shop.test","first_name":"Ada\r\nX","last_name":"L\u202e","sales_rep":"\u2066","password":"correct horse"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var r registration
		if json.Unmarshal(body, &r) != nil {
			return
		}
		if len(r.Valid()) == 0 && (r.Email == "" || r.FirstName == "" || len(r.Password) < 8 || len(r.Password) > 72) {
			t.Fatalf("accepted %+v", r)
		}
		if len(r.Valid()) == 0 && strings.ContainsFunc(r.Email+r.FirstName+r.LastName+r.SalesRep, func(c rune) bool {
			return unicode.IsControl(c) || c >= '\u202A' && c <= '\u202E' || c >= '\u2066' && c <= '\u2069' || c == '\u200E' || c == '\u200F' || c == '\u061C'
		}) {
			t.Fatalf("accepted a control or bidi character: %+q", r)
		}
	})
}
