package fulfillmenttest_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/fulfillment"
	"github.com/errandhq/errand/internal/fulfillment/fulfillmenttest"
	"github.com/errandhq/errand/internal/sandbox"
)

// The sample tracking callback is what the platform sends: checked here
// against the documented signature, computed independently.
func TestTrackingCallbackIsSignedLikeThePlatform(t *testing.T) {
	at := time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)
	body, h := fulfillmenttest.TrackingCallback("fulfillment-callback-secret", 5123456789, "1Z999AA10123456784", at)
	if h.Get("X-Timestamp") != strconv.FormatInt(at.Unix(), 10) {
		t.Fatalf("X-Timestamp %q", h.Get("X-Timestamp"))
	}
	mac := hmac.New(sha256.New, []byte("fulfillment-callback-secret"))
	mac.Write([]byte(h.Get("X-Timestamp") + "."))
	mac.Write(body)
	if h.Get("X-Signature") != hex.EncodeToString(mac.Sum(nil)) {
		t.Fatal("X-Signature is not hex(HMAC-SHA256(callback_secret, timestamp.body))")
	}
	var cb map[string]string
	if err := json.Unmarshal(body, &cb); err != nil {
		t.Fatal(err)
	}
	if cb["order_no"] != "5123456789" || cb["tracking_number"] != "1Z999AA10123456784" || cb["carrier"] == "" ||
		cb["tracking_url"] == "" || cb["shipped_at"] != "2025-07-01T12:00:00Z" {
		t.Fatalf("callback %v", cb)
	}
}

// The gateway checks the appkey, the signature over the exact body and the
// clock before the order, answers HTTP 200 with the outcome in "code", and
// recognises an order it already has.
func TestGatewayWireFormat(t *testing.T) {
	fake := fulfillmenttest.New(fulfillment.Config{AppKey: "app-key", AppSecret: "app-secret"})
	h := sandbox.Of(fake).Handler()
	order := `{"platformOrderId":"42","items":[{"sku":"MUG","quantity":1}],"shipping":{"name":"Ada","address1":"1 Way","city":"London","countryCode":"GB"}}`
	request := func(appKey string, ts int64, data string) string {
		return `{"api":"order-do-create-order","appkey":"` + appKey + `","data":` + data + `,"timestamp":` + strconv.FormatInt(ts, 10) + `,"version":"2"}`
	}
	sign := func(secret, body string) string { // independently of the package under test
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(body))
		return hex.EncodeToString(mac.Sum(nil))
	}
	post := func(body, authorization string) (code string) {
		r := httptest.NewRequest("POST", "/api/v2", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", authorization)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var a struct {
			Code string `json:"code"`
		}
		if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &a) != nil {
			t.Fatalf("HTTP %d %s; the gateway answers 200 with a code", w.Code, w.Body.String())
		}
		return a.Code
	}
	now := time.Now().Unix()
	good := request("app-key", now, order)
	for name, tc := range map[string]struct{ body, auth, want string }{
		"wrong appkey":       {request("other-key", now, order), sign("app-secret", request("other-key", now, order)), fulfillment.CodeBadAppKey},
		"wrong secret":       {good, sign("other-secret", good), fulfillment.CodeBadSignature},
		"no signature":       {good, "", fulfillment.CodeBadSignature},
		"stale timestamp":    {request("app-key", now-600, order), sign("app-secret", request("app-key", now-600, order)), fulfillment.CodeBadTimestamp},
		"no shipping":        {request("app-key", now, `{"platformOrderId":"42","items":[{"sku":"MUG","quantity":1}]}`), sign("app-secret", request("app-key", now, `{"platformOrderId":"42","items":[{"sku":"MUG","quantity":1}]}`)), fulfillment.CodeInvalidData},
		"signed, then moved": {good + " ", sign("app-secret", good), fulfillment.CodeBadSignature},
	} {
		if got := post(tc.body, tc.auth); got != tc.want {
			t.Errorf("%s: code %s, want %s", name, got, tc.want)
		}
	}
	if len(fake.Orders()) != 0 {
		t.Fatalf("a refused request created %v", fake.Orders())
	}
	if got := post(good, sign("app-secret", good)); got != fulfillment.CodeOK {
		t.Fatalf("a good request: code %s", got)
	}
	if got := post(good, sign("app-secret", good)); got != fulfillment.CodeDuplicateOrder {
		t.Fatalf("the same order again: code %s", got)
	}
	if o := fake.Orders(); len(o) != 1 || o[0]["platformOrderId"] != "42" {
		t.Fatalf("orders: %v", o)
	}
}
