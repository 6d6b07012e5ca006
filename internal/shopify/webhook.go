package shopify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
)

// Shopify signs every webhook with the app's secret: X-Shopify-Hmac-Sha256 =
// base64(HMAC-SHA256(secret, raw body)). errand's webhook endpoint, the
// sandbox's samples and the tests all sign and check here.

// SignWebhook is the X-Shopify-Hmac-Sha256 header of a webhook with body.
func SignWebhook(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// VerifyWebhook checks a webhook's X-Shopify-Hmac-Sha256 header in constant
// time. With no secret, every webhook is refused.
func VerifyWebhook(secret string, body []byte, header string) error {
	if secret == "" {
		return errors.New("webhooks are not configured (shopify.webhook_secret is empty)")
	}
	got, err := base64.StdEncoding.DecodeString(strings.TrimSpace(header))
	if err != nil || len(got) == 0 {
		return errors.New("missing or malformed X-Shopify-Hmac-Sha256")
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return errors.New("bad X-Shopify-Hmac-Sha256")
	}
	return nil
}
