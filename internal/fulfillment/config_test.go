package fulfillment_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/fulfillment"
)

func TestConfigValidate(t *testing.T) {
	err := fulfillment.DefaultConfig().Validate()
	if err == nil || err.Error() != "fulfillment.base_url: must be set; fulfillment.app_key: must be set; fulfillment.app_secret: must be set" {
		t.Fatalf("the default: %v", err)
	}
	// The callback secret is the webhook's business, not the client's.
	good := fulfillment.Config{BaseURL: "https://gateway.test", AppKey: "key", AppSecret: "app-secret-value"}
	if err := good.Validate(); err != nil {
		t.Fatalf("a complete config: %v", err)
	}
	bad := good
	bad.BaseURL = "gateway.test/api"
	if err := bad.Validate(); err == nil || !strings.HasPrefix(err.Error(), "fulfillment.base_url: must be an http or https URL") || strings.Contains(err.Error(), "app-secret-value") {
		t.Fatalf("a base_url without a scheme: %v", err)
	}
}

// hexMAC is HMAC-SHA256 as the gateway documents it, written here apart from
// the package so a shared mistake cannot hide.
func hexMAC(secret string, parts ...string) string {
	m := hmac.New(sha256.New, []byte(secret))
	for _, p := range parts {
		m.Write([]byte(p))
	}
	return hex.EncodeToString(m.Sum(nil))
}

func TestSignAndVerifyRequest(t *testing.T) {
	body := []byte(`{"api":"order-do-create-order","appkey":"k","data":{},"timestamp":1751371200,"version":"2"}`)
	sig := fulfillment.Sign("app-secret", body)
	if sig != hexMAC("app-secret", string(body)) {
		t.Fatalf("Sign = %s, not hex(HMAC-SHA256(app_secret, body))", sig)
	}
	if err := fulfillment.VerifyRequest("app-secret", body, sig); err != nil {
		t.Fatalf("the right signature: %v", err)
	}
	if err := fulfillment.VerifyRequest("app-secret", body, " "+strings.ToUpper(sig)+" "); err != nil {
		t.Fatalf("the right signature in capitals, with spaces: %v", err)
	}
	for name, auth := range map[string]string{
		"empty": "", "not hex": "zz", "another secret": fulfillment.Sign("other", body),
		"another body": fulfillment.Sign("app-secret", append(body, ' ')), "truncated": sig[:32],
	} {
		if err := fulfillment.VerifyRequest("app-secret", body, auth); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestVerifyCallback(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	body := []byte(`{"order_no":"42","tracking_number":"1Z"}`)
	sig := fulfillment.SignCallback("cb-secret", ts, body)
	if sig != hexMAC("cb-secret", ts, ".", string(body)) {
		t.Fatalf("SignCallback = %s, not hex(HMAC-SHA256(secret, timestamp.body))", sig)
	}
	if err := fulfillment.VerifyCallback("cb-secret", ts, body, sig, now); err != nil {
		t.Fatalf("the right signature: %v", err)
	}
	if err := fulfillment.VerifyCallback("cb-secret", ts, body, sig, now.Add(fulfillment.CallbackSkew)); err != nil {
		t.Fatalf("at the edge of the skew: %v", err)
	}
	stale := strconv.FormatInt(now.Add(-fulfillment.CallbackSkew-time.Second).Unix(), 10)
	for _, tc := range []struct {
		name, secret, ts, sig, want string
	}{
		{"no secret configured", "", ts, sig, "callbacks are not configured (fulfillment.callback_secret is empty)"},
		{"no timestamp", "cb-secret", "", sig, "missing or malformed X-Timestamp"},
		{"stale", "cb-secret", stale, fulfillment.SignCallback("cb-secret", stale, body), "stale X-Timestamp"},
		{"from the future", "cb-secret", strconv.FormatInt(now.Add(time.Hour).Unix(), 10), sig, "stale X-Timestamp"},
		{"no signature", "cb-secret", ts, "", "missing or malformed X-Signature"},
		{"wrong secret", "cb-secret", ts, fulfillment.SignCallback("other", ts, body), "bad signature"},
		{"another timestamp's signature", "cb-secret", ts, fulfillment.SignCallback("cb-secret", stale, body), "bad signature"},
	} {
		err := fulfillment.VerifyCallback(tc.secret, tc.ts, body, tc.sig, now)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}
