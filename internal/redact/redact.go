// Package redact masks secrets in what errand shows of a job outside the
// worker: payloads and error texts in escalation emails, failure log lines,
// callbacks and the job's stored last error.
package redact

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"regexp"
	"strings"
	"unicode/utf8"
)

// masked replaces every secret value.
const masked = "[redacted]"

// maxShown is how many bytes of a payload or error text leave errand: enough
// to diagnose a failure, not a whole response body in every email.
const maxShown = 2000

// secretWords are matched as substrings of a normalised key (see
// normaliseKey). Plain "key" is on the list on purpose: it catches api_key,
// apikey, X-Api-Key, private_key, access_key and app_key, at the price of
// also masking harmless fields such as "monkey" or "keyboard"; a masked field
// costs a look at the dashboard, a leaked key costs a rotation. For the same
// reason "auth" also masks "author".
var secretWords = []string{
	"secret", "token", "password", "passwd", "passphrase", "pwd", "key",
	"authorization", "auth", "cookie", "session", "signature", "credential",
}

// notSecret are keys that contain a secret word and name no secret: the
// status "Unauthorized: …" opens many a service's error text.
var notSecret = map[string]bool{"unauthorized": true, "unauthorised": true}

// Redactor masks secrets in what errand shows of a job outside the worker:
// payloads and error texts in escalation emails, failure log lines, callbacks
// and the job's stored last error. The zero value and nil use secretWords.
type Redactor struct {
	words []string // normalised
}

// New returns a redactor for secretWords plus extra (escalation.redact),
// normalised the same way.
func New(extra []string) *Redactor {
	r := &Redactor{words: append([]string(nil), secretWords...)}
	for _, w := range extra {
		// An entry that normalises to nothing would match every key.
		if n := normaliseKey(w); n != "" {
			r.words = append(r.words, n)
		}
	}
	return r
}

// normaliseKey lowercases k and drops the separators people put between
// words, so that client_secret, Client-Secret, clientSecret and "client
// secret" read alike.
func normaliseKey(k string) string {
	return strings.Map(func(c rune) rune {
		switch c {
		case '_', '-', '.', ' ':
			return -1
		}
		return c
	}, strings.ToLower(k))
}

// IsSecretKey reports whether a field, header or parameter named k holds a
// secret.
func (r *Redactor) IsSecretKey(k string) bool {
	words := secretWords
	if r != nil && r.words != nil {
		words = r.words
	}
	n := normaliseKey(k)
	if notSecret[n] {
		return false
	}
	for _, w := range words {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// Payload returns a job's payload as text to show: a JSON payload with the
// values of secret keys masked at any depth and its strings masked as texts
// (see Text); anything else masked as a text. The result is shortened.
func (r *Redactor) Payload(payload []byte) string {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber() // large ids keep their digits
	var v any
	if err := dec.Decode(&v); err != nil || dec.Decode(new(any)) != io.EOF {
		return r.Text(string(payload))
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r.mask(v)); err != nil {
		return r.Text(string(payload))
	}
	return shorten(strings.TrimSuffix(out.String(), "\n"))
}

func (r *Redactor) mask(v any) any {
	switch t := v.(type) {
	case map[string]any:
		// [{"name":"Authorization","value":"…"}]: the secret is named by a
		// value, not a key.
		var secretPair bool
		for k, val := range t {
			switch strings.ToLower(k) {
			case "name", "key", "header", "field":
				if s, ok := val.(string); ok && r.IsSecretKey(s) {
					secretPair = true
				}
			}
		}
		for k, val := range t {
			lk := strings.ToLower(k)
			if r.IsSecretKey(k) || (secretPair && (lk == "value" || lk == "values")) {
				t[k] = masked
			} else {
				t[k] = r.mask(val)
			}
		}
	case []any:
		for i := range t {
			t[i] = r.mask(t[i])
		}
	case string:
		return r.Text(t)
	}
	return v
}

var (
	// userinfo is the user:password@ of a URL; it cannot hold / ? or #.
	userinfo = regexp.MustCompile(`(?i)\b([a-z][a-z0-9+.\-]*://)[^/?#\s@"'<>]+@`)
	// bearer is an Authorization value written out anywhere in a text.
	bearer = regexp.MustCompile(`(?i)\b(bearer\s+)[^\s"',;]+`)
	// basic is a Basic credential; it is masked when it decodes to
	// user:password, so that "basic validation" in prose stays readable.
	basic = regexp.MustCompile(`(?i)\b(basic\s+)([A-Za-z0-9+/_\-]+=*)`)
	// keyValue is key=value, key: value, "key":"value", key='value', with
	// the key optionally quoted (also \"key\" inside a quoted JSON text) and
	// an optional auth scheme before the value (Authorization: Token abc). A
	// quote left open runs to the end: a cut text still hides its secret.
	keyValue = regexp.MustCompile(`(\\?["']?)([A-Za-z0-9_.\-]+)(\\?["']?\s*[:=]\s*)` +
		`((?i:(?:bearer|basic|token|bot|digest|negotiate|apikey|key|ssws|hmac)\s+)?` +
		`(?:"(?:[^"\\]|\\.)*(?:"|$)|\\"(?:[^"\\]|\\[^"])*(?:\\"|$)|'[^']*(?:'|$)|\[[^\[\]]*(?:\]|$)|[^\s,;&"'<>(){}\[\]\\]+))`)
)

// Text masks the secrets in a free text (an error message, a payload that is
// not JSON): the value of every key=value, key: value or "key":"value" whose
// key is a secret one, Bearer and Basic credentials, and the user:password@
// of URLs. The result is shortened and valid UTF-8.
func (r *Redactor) Text(s string) string {
	// Every failure's error passes here, thousands a second when a service is
	// down: each pattern runs only when the text holds what it needs to match.
	if strings.Contains(s, "://") && strings.Contains(s, "@") {
		s = userinfo.ReplaceAllString(s, "${1}"+masked+"@")
	}
	if hasFold(s, "bearer") {
		s = bearer.ReplaceAllString(s, "${1}"+masked)
	}
	if hasFold(s, "basic") {
		s = basic.ReplaceAllStringFunc(s, func(m string) string {
			sub := basic.FindStringSubmatch(m)
			if looksLikeBasic(sub[2]) {
				return sub[1] + masked
			}
			return m
		})
	}
	if strings.ContainsAny(s, ":=") && r.mayHoldSecretKey(s) {
		s = r.maskPairs(s)
	}
	return shorten(s)
}

// mayHoldSecretKey reports whether some key in s could be a secret one: a
// key is a run of s, so its normalised form is in s normalised whole.
func (r *Redactor) mayHoldSecretKey(s string) bool {
	words := secretWords
	if r != nil && r.words != nil {
		words = r.words
	}
	n := normaliseKey(s)
	for _, w := range words {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// hasFold reports whether s holds word, ASCII letters in any case.
func hasFold(s, word string) bool {
	for i := 0; i+len(word) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(word)], word) {
			return true
		}
	}
	return false
}

// maskPairs masks the values of the key=value pairs in s whose key is a
// secret one. The value of any other key is searched too, not skipped:
// url=https://host/?token=abc holds a secret pair inside a harmless one.
func (r *Redactor) maskPairs(s string) string {
	var b strings.Builder
	pos := 0
	for pos < len(s) {
		loc := keyValue.FindStringSubmatchIndex(s[pos:])
		if loc == nil {
			break
		}
		key, sepEnd, valStart, valEnd := s[pos+loc[4]:pos+loc[5]], pos+loc[7], pos+loc[8], pos+loc[9]
		if !r.IsSecretKey(key) {
			b.WriteString(s[pos:sepEnd])
			pos = sepEnd
			continue
		}
		b.WriteString(s[pos:valStart])
		b.WriteString(quoteLike(s[valStart:valEnd]))
		pos = valEnd
	}
	if pos == 0 {
		return s
	}
	b.WriteString(s[pos:])
	return b.String()
}

// quoteLike returns masked in the quotes value was written in, so that masked
// JSON stays JSON.
func quoteLike(value string) string {
	for _, q := range []string{`\"`, `"`, `'`} {
		if strings.HasPrefix(value, q) && strings.HasSuffix(value, q) && len(value) >= 2*len(q) {
			return q + masked + q
		}
	}
	return masked
}

func looksLikeBasic(cred string) bool {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(cred); err == nil && bytes.IndexByte(b, ':') > 0 {
			return true
		}
	}
	return false
}

// shorten cuts s to maxShown bytes; see Cut.
func shorten(s string) string { return Cut(s, maxShown) }

// Cut makes s valid UTF-8 and cuts it to n bytes on a character boundary,
// marking the cut.
func Cut(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
