// Package tidiotest is a fake of Tidio's OpenAPI contacts for tests and the
// sandbox: GET /contacts[?email=][&cursor=], POST /contacts (201 {"id"};
// never an upsert: a second contact with a known email is refused),
// GET and PATCH /contacts/{id}, each checking the project's
// X-Tidio-Openapi-Client-Id and X-Tidio-Openapi-Client-Secret, with errors as
// {"errors":[{"code","message"}]}. The sandbox (internal/sandbox) serves it
// with fault injection and a call log.
package tidiotest

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"net/mail"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/errandhq/errand/internal/tidio"
)

// Service names the fake in the sandbox's faults and call log.
const Service = "tidio"

// PageSize is how many contacts one GET /contacts lists.
const PageSize = 100

// contactFields are the contact fields the fake accepts; Tidio refuses others.
var contactFields = map[string]bool{
	"distinct_id": true, "email": true, "first_name": true, "last_name": true,
	"phone": true, "email_consent": true,
}

// Fake is one Tidio project's contacts.
type Fake struct {
	clientID, clientSecret string

	mu       sync.Mutex
	contacts []map[string]any // oldest first; each has "id"
}

// New returns a project that takes the credentials in cfg (crm.client_id and
// crm.client_secret); with either empty, every call is refused.
func New(cfg tidio.Config) *Fake {
	return &Fake{clientID: cfg.ClientID, clientSecret: cfg.ClientSecret}
}

// Service implements sandbox.Fake.
func (f *Fake) Service() string { return Service }

// Routes implements sandbox.Fake.
func (f *Fake) Routes() map[string]func(http.ResponseWriter, *http.Request, []byte) (int, string) {
	return map[string]func(http.ResponseWriter, *http.Request, []byte) (int, string){
		"GET /contacts":        f.listContacts,
		"POST /contacts":       f.createContact,
		"GET /contacts/{id}":   f.getContact,
		"PATCH /contacts/{id}": f.updateContact,
	}
}

// Throttle answers as Tidio does past its per-minute limit: 429 without a
// word on when to come back.
func (f *Fake) Throttle(w http.ResponseWriter) int {
	w.Header().Set("X-Ratelimit-Limit", "60")
	w.Header().Set("X-Ratelimit-Remaining", "0")
	return apiError(w, http.StatusTooManyRequests, "too_many_requests", "You have reached the limit of allowed attempts")
}

// Contacts returns copies of the contacts, oldest first.
func (f *Fake) Contacts() []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]map[string]any, len(f.contacts))
	for i, c := range f.contacts {
		out[i] = copyContact(c)
	}
	return out
}

// AddContact stores a contact as if it had been created earlier and returns
// its id.
func (f *Fake) AddContact(fields map[string]string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := map[string]any{"id": newID(), "created_at": time.Now().UTC().Format(time.RFC3339)}
	for k, v := range fields {
		c[k] = v
	}
	f.contacts = append(f.contacts, c)
	return c["id"].(string)
}

// authorized checks the OpenAPI credentials, answering 401 when they do not
// match.
func (f *Fake) authorized(w http.ResponseWriter, r *http.Request) bool {
	id := r.Header.Get("X-Tidio-Openapi-Client-Id")
	secret := r.Header.Get("X-Tidio-Openapi-Client-Secret")
	if f.clientID == "" || f.clientSecret == "" ||
		subtle.ConstantTimeCompare([]byte(id), []byte(f.clientID)) != 1 ||
		subtle.ConstantTimeCompare([]byte(secret), []byte(f.clientSecret)) != 1 {
		apiError(w, http.StatusUnauthorized, "unauthorized", "Invalid OpenAPI client credentials")
		return false
	}
	return true
}

// listContacts is GET /contacts[?email=][&cursor=].
func (f *Fake) listContacts(w http.ResponseWriter, r *http.Request, _ []byte) (int, string) {
	if !f.authorized(w, r) {
		return http.StatusUnauthorized, "bad credentials"
	}
	q := r.URL.Query()
	email := q.Get("email")
	if q.Has("email") && !validEmail(email) {
		return apiError(w, http.StatusUnprocessableEntity, "invalid_email", "email must be a full, valid email address"), "invalid email filter"
	}
	start := 0
	if c := q.Get("cursor"); c != "" {
		n, err := strconv.Atoi(c)
		if err != nil || n < 0 {
			return apiError(w, http.StatusBadRequest, "invalid_cursor", "cursor is not valid"), "bad cursor"
		}
		start = n
	}
	f.mu.Lock()
	var matched []map[string]any
	for _, c := range f.contacts {
		if email == "" || strings.EqualFold(str(c["email"]), email) {
			matched = append(matched, copyContact(c))
		}
	}
	f.mu.Unlock()
	var cursor any
	page := []map[string]any{}
	if start < len(matched) {
		end := min(start+PageSize, len(matched))
		page = matched[start:end]
		if end < len(matched) {
			cursor = strconv.Itoa(end)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"contacts": page, "meta": map[string]any{"cursor": cursor, "limit": PageSize}})
	return http.StatusOK, fmt.Sprintf("%d contact(s)", len(page))
}

// getContact is GET /contacts/{id}.
func (f *Fake) getContact(w http.ResponseWriter, r *http.Request, _ []byte) (int, string) {
	if !f.authorized(w, r) {
		return http.StatusUnauthorized, "bad credentials"
	}
	f.mu.Lock()
	c := f.find(r.PathValue("id"))
	if c != nil {
		c = copyContact(c)
	}
	f.mu.Unlock()
	if c == nil {
		return apiError(w, http.StatusNotFound, "not_found", "Contact not found"), "no such contact"
	}
	writeJSON(w, http.StatusOK, c)
	return http.StatusOK, ""
}

// createContact is POST /contacts: never an upsert, so a second contact
// with an email already known is refused.
func (f *Fake) createContact(w http.ResponseWriter, r *http.Request, body []byte) (int, string) {
	if !f.authorized(w, r) {
		return http.StatusUnauthorized, "bad credentials"
	}
	fields, status, code, msg := fieldsOf(body)
	if status != 0 {
		return apiError(w, status, code, msg), msg
	}
	if str(fields["email"]) == "" && str(fields["first_name"]) == "" && str(fields["last_name"]) == "" && str(fields["phone"]) == "" {
		return apiError(w, http.StatusUnprocessableEntity, "validation_error", "one of email, first_name, last_name or phone is required"), "empty contact"
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if email := str(fields["email"]); email != "" && f.findByEmail(email, "") != nil {
		return apiError(w, http.StatusUnprocessableEntity, "contact_already_exists", "A contact with this email already exists"), "duplicate email"
	}
	fields["id"] = newID()
	fields["created_at"] = time.Now().UTC().Format(time.RFC3339)
	f.contacts = append(f.contacts, fields)
	writeJSON(w, http.StatusCreated, map[string]any{"id": fields["id"]})
	return http.StatusCreated, "created " + fields["id"].(string)
}

// updateContact is PATCH /contacts/{id}: the fields given change, the
// others stay.
func (f *Fake) updateContact(w http.ResponseWriter, r *http.Request, body []byte) (int, string) {
	if !f.authorized(w, r) {
		return http.StatusUnauthorized, "bad credentials"
	}
	fields, status, code, msg := fieldsOf(body)
	if status != 0 {
		return apiError(w, status, code, msg), msg
	}
	id := r.PathValue("id")
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.find(id)
	if c == nil {
		return apiError(w, http.StatusNotFound, "not_found", "Contact not found"), "no such contact"
	}
	if email := str(fields["email"]); email != "" && f.findByEmail(email, id) != nil {
		return apiError(w, http.StatusUnprocessableEntity, "contact_already_exists", "A contact with this email already exists"), "duplicate email"
	}
	for k, v := range fields {
		c[k] = v
	}
	writeJSON(w, http.StatusOK, copyContact(c))
	return http.StatusOK, "updated " + id
}

// fieldsOf decodes and checks a contact body; status is 0 when it is
// acceptable.
func fieldsOf(body []byte) (fields map[string]any, status int, code, msg string) {
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return nil, http.StatusBadRequest, "invalid_json", "The request body is not a JSON object"
	}
	for k, v := range fields {
		if !contactFields[k] {
			return nil, http.StatusUnprocessableEntity, "validation_error", fmt.Sprintf("%s is not a contact field", k)
		}
		if _, ok := v.(string); !ok && v != nil {
			return nil, http.StatusUnprocessableEntity, "validation_error", k + " must be a string"
		}
	}
	if email, ok := fields["email"]; ok && email != nil && !validEmail(str(email)) {
		return nil, http.StatusUnprocessableEntity, "invalid_email", "email must be a valid email address"
	}
	return fields, 0, "", ""
}

// find returns the contact with id; f.mu must be held.
func (f *Fake) find(id string) map[string]any {
	for _, c := range f.contacts {
		if c["id"] == id {
			return c
		}
	}
	return nil
}

// findByEmail returns the contact with email other than the one with id
// except; f.mu must be held.
func (f *Fake) findByEmail(email, except string) map[string]any {
	for _, c := range f.contacts {
		if c["id"] != except && strings.EqualFold(str(c["email"]), email) {
			return c
		}
	}
	return nil
}

func apiError(w http.ResponseWriter, status int, code, message string) int {
	writeJSON(w, status, map[string]any{"errors": []map[string]string{{"code": code, "message": message}}})
	return status
}

// validEmail accepts a bare address (no display name) with a domain.
func validEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s && strings.Contains(s[strings.LastIndex(s, "@")+1:], ".")
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func copyContact(c map[string]any) map[string]any {
	out := make(map[string]any, len(c))
	for k, v := range c {
		out[k] = v
	}
	return out
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
