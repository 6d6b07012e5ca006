package shopify_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/errandhq/errand/internal/shopify"
)

func TestConfigValidate(t *testing.T) {
	err := shopify.DefaultConfig().Validate()
	if err == nil || err.Error() != "shopify.shop (or shopify.base_url): must be set; shopify.access_token: must be set" {
		t.Fatalf("the default: %v", err)
	}
	// The webhook secret is the webhook's business, not the client's.
	good := shopify.Config{Shop: "acme.myshopify.com", AccessToken: "shpat_secret_value", APIVersion: shopify.DefaultAPIVersion}
	if err := good.Validate(); err != nil {
		t.Fatalf("a complete config: %v", err)
	}
	for name, edit := range map[string]func(*shopify.Config){
		"a URL as the shop": func(c *shopify.Config) { c.Shop = "https://acme.myshopify.com" },
		"no api_version":    func(c *shopify.Config) { c.APIVersion = "" },
		"bad base_url":      func(c *shopify.Config) { c.BaseURL = "localhost:8090" },
	} {
		c := good
		edit(&c)
		err := c.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), "shopify.") || strings.Contains(err.Error(), "shpat_secret_value") {
			t.Errorf("%s: %v", name, err)
		}
	}
	sandboxed := good
	sandboxed.Shop, sandboxed.BaseURL = "", "http://127.0.0.1:8090"
	if err := sandboxed.Validate(); err != nil {
		t.Fatalf("base_url without a shop: %v", err)
	}
}

func TestSignAndVerifyWebhook(t *testing.T) {
	body := []byte(`{"id":820982911946154508,"email":"a@b.test"}`)
	// Written here apart from the package, as Shopify documents it.
	m := hmac.New(sha256.New, []byte("wh-secret"))
	m.Write(body)
	want := base64.StdEncoding.EncodeToString(m.Sum(nil))
	if got := shopify.SignWebhook("wh-secret", body); got != want {
		t.Fatalf("SignWebhook = %s, want base64(HMAC-SHA256(secret, body)) %s", got, want)
	}
	if err := shopify.VerifyWebhook("wh-secret", body, " "+want+" "); err != nil {
		t.Fatalf("the right signature: %v", err)
	}
	for name, tc := range map[string]struct{ secret, header string }{
		"no secret configured": {"", shopify.SignWebhook("", body)},
		"no header":            {"wh-secret", ""},
		"not base64":           {"wh-secret", "%%%"},
		"another secret":       {"wh-secret", shopify.SignWebhook("other", body)},
		"another body":         {"wh-secret", shopify.SignWebhook("wh-secret", append(body, ' '))},
	} {
		if err := shopify.VerifyWebhook(tc.secret, body, tc.header); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
