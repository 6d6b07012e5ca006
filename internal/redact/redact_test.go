package redact

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// secretsIn returns the secrets that survived in shown.
func secretsIn(shown string, secrets ...string) []string {
	var out []string
	for _, s := range secrets {
		if strings.Contains(shown, s) {
			out = append(out, s)
		}
	}
	return out
}

// A caller who names secrets in any of the usual spellings, at any depth,
// sees none of them come back in what errand shows of the job.
func TestRedactPayloadSecretKeysInAnySpelling(t *testing.T) {
	r := New([]string{"password", "token", "secret", "access_token", "authorization"})
	payload := `{
		"email": "ada@shop.test", "order_id": 12345678901234567,
		"client_secret": "s-client-secret-1", "api_key": "s-api-key-2", "refresh_token": "s-refresh-3",
		"bot_token": "s-bot-4", "X-Api-Key": "s-xapikey-5", "AUTHORIZATION": "Bearer s-authz-6",
		"Password": "s-password-7", "user.passwd": "s-passwd-8", "Private Key": "s-private-9",
		"clientSecret": {"nested": "s-object-10"},
		"nested": {"deeper": [{"accessKey": "s-access-11"}, {"session_id": "s-session-12"}]},
		"headers": [{"name": "Cookie", "value": "s-cookie-13"}, {"name": "Accept", "value": "text/html"}],
		"note": "retry with password=s-note-14 at https://bob:s-userinfo-15@api.example/x",
		"signature": 42
	}`
	got := r.Payload([]byte(payload))
	if leaked := secretsIn(got, "s-client-secret-1", "s-api-key-2", "s-refresh-3", "s-bot-4", "s-xapikey-5",
		"s-authz-6", "s-password-7", "s-passwd-8", "s-private-9", "s-object-10", "s-access-11", "s-session-12",
		"s-cookie-13", "s-note-14", "s-userinfo-15", "42"); len(leaked) > 0 {
		t.Fatalf("secrets shown: %v\n%s", leaked, got)
	}
	for _, kept := range []string{"ada@shop.test", "12345678901234567", `"Accept"`, "text/html", "api.example/x"} {
		if !strings.Contains(got, kept) {
			t.Errorf("%q was masked or lost: %s", kept, got)
		}
	}
}

// The configured escalation.redact entries are normalised too: "Customer
// PIN" masks customer_pin.
func TestRedactConfiguredKeys(t *testing.T) {
	r := New([]string{"Customer PIN", "", "  "})
	got := r.Payload([]byte(`{"customer_pin":"4711","CustomerPin":"4712","email":"a@b.test"}`))
	if leaked := secretsIn(got, "4711", "4712"); len(leaked) > 0 {
		t.Fatalf("configured keys not masked: %s", got)
	}
	if !strings.Contains(got, "a@b.test") {
		t.Fatalf("an empty entry masked everything: %s", got)
	}
}

// A payload that is not JSON (queued by another program) is masked as a
// text, and shortened.
func TestRedactNonJSONPayload(t *testing.T) {
	var r *Redactor // the defaults
	for _, tc := range []struct{ payload, secret string }{
		{"user=ada&password=hunter2hunter2&x=1", "hunter2hunter2"},
		{"client_secret: s3cr3t-value\nother: fine", "s3cr3t-value"},
		{`{"api_key": "half-json-secret"`, "half-json-secret"},
		{"Authorization: Bearer abc.def.ghi", "abc.def.ghi"},
		{"X-Api-Key: Token tok-123456", "tok-123456"},
		{"dsn=postgres://errand:dbpass99@db:5432/errand", "dbpass99"},
		{"url=https://shop.test/cb?access_token=qs-token-1&x=2", "qs-token-1"},
		{"{'password': 'py-repr-secret'}", "py-repr-secret"},
		{`password="left open, a secret with spaces`, "a secret with spaces"},
		{`{"name":"x","api_key":"cut-off-before-the-quote`, "cut-off-before-the-quote"},
	} {
		got := r.Payload([]byte(tc.payload))
		if strings.Contains(got, tc.secret) {
			t.Errorf("%q shown as %q", tc.payload, got)
		}
		if !strings.Contains(got, masked) {
			t.Errorf("%q: no mask in %q", tc.payload, got)
		}
	}
	long := r.Payload([]byte(strings.Repeat("é", 3000)))
	if len(long) > maxShown+len("…") || !strings.HasSuffix(long, "…") || !utf8.ValidString(long) {
		t.Fatalf("a long payload is shown as %d bytes (valid UTF-8: %v)", len(long), utf8.ValidString(long))
	}
	if got := r.Payload([]byte("bad\xffbytes")); !utf8.ValidString(got) {
		t.Fatalf("invalid UTF-8 shown: %q", got)
	}
}

// Error texts carry what services answered and what the handler wrapped:
// credentials in them are masked, the rest is kept to diagnose the failure.
func TestRedactErrorText(t *testing.T) {
	var r *Redactor
	for _, tc := range []struct{ text, secret, kept string }{
		{"login failed: password=hunter2hunter2", "hunter2hunter2", "login failed"},
		{"tidio: 401: request had Authorization: Bearer abcdefghijkl", "abcdefghijkl", "tidio: 401"},
		{`Post "https://u:pw-in-url@hooks.test/x": dial tcp: connection refused`, "pw-in-url", "hooks.test/x"},
		{"sent Basic " + "YWRhOnMzY3IzdC1iYXNpYw==" + " and got 403", "YWRhOnMzY3IzdC1iYXNpYw==", "got 403"},
		{`shopify: 422: {"errors":"bad","access_token":"shpat_leak"}`, "shpat_leak", `"errors":"bad"`},
		{`crm: 400: "{\"client_secret\":\"escaped-leak\",\"ok\":1}"`, "escaped-leak", `\"ok\":1`},
		{"GET https://api.test/v1?email=a@b.test&api_key=qk-leak: 500", "qk-leak", "email=a@b.test"},
		{"header X-Api-Key=[hdr-leak] refused", "hdr-leak", "refused"},
	} {
		got := r.Text(tc.text)
		if strings.Contains(got, tc.secret) || !strings.Contains(got, masked) {
			t.Errorf("%q shown as %q", tc.text, got)
		}
		if !strings.Contains(got, tc.kept) {
			t.Errorf("%q lost %q: %q", tc.text, tc.kept, got)
		}
	}
	// What is no credential stays as it is.
	for _, plain := range []string{
		"smtp: 550 5.1.1 mailbox unavailable",
		"basic validation failed: email: must not be empty",
		"tidio: find contact: HTTP 401: unauthorized: wrong client id",
		"timed out after 1m0s: context deadline exceeded",
		`invalid payload: field "email" must be string, not number`,
	} {
		if got := r.Text(plain); got != plain {
			t.Errorf("%q changed to %q", plain, got)
		}
	}
}

// Whatever a payload or an error text holds, the redactor neither panics nor
// shows more than maxShown bytes of valid UTF-8, and a secret written first
// as password=… stays masked whatever follows it.
func FuzzRedactor(f *testing.F) {
	for _, seed := range []string{
		"", "{}", `{"password":"x"}`, `[{"name":"Cookie","value":"v"}]`, "a=b&token=c", "Authorization: Bearer x",
		"Basic YTpi", "https://u:p@h/", `"\"key\":\"v\""`, "bad\xff", `{"a":[{"b":{"secret":1}}]}`, "x='", `\"`,
	} {
		f.Add(seed)
	}
	r := New([]string{"pin"})
	const secret = "s3cr3tvalue"
	f.Fuzz(func(t *testing.T, in string) {
		for _, out := range []string{r.Text(in), r.Payload([]byte(in))} {
			if !utf8.ValidString(out) || len(out) > maxShown+len("…") {
				t.Fatalf("%q shown as %q", in, out)
			}
		}
		out := r.Text("password=" + secret + " " + in)
		if strings.Count(out, secret) > strings.Count(in, secret) {
			t.Fatalf("the leading secret survived: %q", out)
		}
	})
}

// BenchmarkText is the cost every failed attempt pays: an error text with
// nothing to mask, and one with a secret.
func BenchmarkText(b *testing.B) {
	r := New(nil)
	for name, text := range map[string]string{
		"plain":  "tidio: create contact: HTTP 503: service unavailable",
		"secret": "tidio: GET https://u:pw@api.test/contacts?token=abc: Authorization: Bearer xyz",
	} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				r.Text(text)
			}
		})
	}
}
