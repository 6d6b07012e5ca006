package fulfillment

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Both directions are signed with HMAC-SHA256, hex-encoded. errand signs its
// requests to the gateway (Authorization over the raw body); the platform
// signs its tracking callbacks to errand (X-Signature over X-Timestamp, ".",
// and the raw body, so an old callback cannot be replayed). errand, the
// sandbox's gateway and the sample callbacks all sign and check here.

// Sign is the Authorization header of a request with body:
// hex(HMAC-SHA256(appSecret, body)).
func Sign(appSecret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(appSecret))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// VerifyRequest checks a request's Authorization header as the gateway does,
// in constant time.
func VerifyRequest(appSecret string, body []byte, authorization string) error {
	got, err := hex.DecodeString(strings.TrimSpace(authorization))
	if err != nil || len(got) == 0 {
		return errors.New("missing or malformed Authorization")
	}
	mac := hmac.New(sha256.New, []byte(appSecret))
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return errors.New("bad signature")
	}
	return nil
}

// CallbackSkew is how far a tracking callback's X-Timestamp may be from now.
const CallbackSkew = 5 * time.Minute

// SignCallback is the X-Signature of a tracking callback with body sent at
// timestamp (X-Timestamp, unix seconds): hex(HMAC-SHA256(secret, timestamp +
// "." + body)).
func SignCallback(secret, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(timestamp))
	mac.Write([]byte("."))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// VerifyCallback checks a tracking callback's X-Timestamp and X-Signature
// headers: the timestamp within CallbackSkew of now, the signature in
// constant time. Its error says what is wrong without revealing the
// signature that was expected; with no secret, every callback is refused.
func VerifyCallback(secret, timestamp string, body []byte, signature string, now time.Time) error {
	if secret == "" {
		return errors.New("callbacks are not configured (fulfillment.callback_secret is empty)")
	}
	timestamp = strings.TrimSpace(timestamp)
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return errors.New("missing or malformed X-Timestamp")
	}
	if d := now.Sub(time.Unix(ts, 0)); d > CallbackSkew || d < -CallbackSkew {
		return errors.New("stale X-Timestamp")
	}
	got, err := hex.DecodeString(strings.TrimSpace(signature))
	if err != nil || len(got) == 0 {
		return errors.New("missing or malformed X-Signature")
	}
	want, _ := hex.DecodeString(SignCallback(secret, timestamp, body))
	if !hmac.Equal(got, want) {
		return errors.New("bad signature")
	}
	return nil
}
