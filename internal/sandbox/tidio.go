package sandbox

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
)

// tidioPageSize is how many contacts one GET /contacts lists.
const tidioPageSize = 100

// tidioFields are the contact fields the fake accepts; Tidio refuses others.
var tidioFields = map[string]bool{
	"distinct_id": true, "email": true, "first_name": true, "last_name": true,
	"phone": true, "email_consent": true,
}

type tidioState struct {
	mu       sync.Mutex
	contacts []map[string]any // oldest first; each has "id"
}

func init() {
	registrars = append(registrars, func(s *Sandbox) {
		s.Handle(Tidio, "GET /contacts", s.tidioListContacts)
		s.Handle(Tidio, "POST /contacts", s.tidioCreateContact)
		s.Handle(Tidio, "GET /contacts/{id}", s.tidioGetContact)
		s.Handle(Tidio, "PATCH /contacts/{id}", s.tidioUpdateContact)
	})
	// Tidio limits requests per minute and says nothing of when to come back.
	throttlers[Tidio] = func(w http.ResponseWriter) int {
		w.Header().Set("X-Ratelimit-Limit", "60")
		w.Header().Set("X-Ratelimit-Remaining", "0")
		return tidioError(w, http.StatusTooManyRequests, "too_many_requests", "You have reached the limit of allowed attempts")
	}
}

func (s *Sandbox) tidioState() *tidioState {
	return State(s, Tidio, func() *tidioState { return &tidioState{} })
}

// TidioContacts returns copies of the fake's contacts, oldest first.
func (s *Sandbox) TidioContacts() []map[string]any {
	st := s.tidioState()
	st.mu.Lock()
	defer st.mu.Unlock()
	out := make([]map[string]any, len(st.contacts))
	for i, c := range st.contacts {
		out[i] = tidioCopy(c)
	}
	return out
}

// AddTidioContact stores a contact as if it had been created earlier and
// returns its id.
func (s *Sandbox) AddTidioContact(fields map[string]string) string {
	st := s.tidioState()
	st.mu.Lock()
	defer st.mu.Unlock()
	c := map[string]any{"id": tidioID(), "created_at": time.Now().UTC().Format(time.RFC3339)}
	for k, v := range fields {
		c[k] = v
	}
	st.contacts = append(st.contacts, c)
	return c["id"].(string)
}

// tidioAuthorized checks the OpenAPI credentials against crm.client_id and
// crm.client_secret, answering 401 when they do not match.
func (s *Sandbox) tidioAuthorized(w http.ResponseWriter, r *http.Request) bool {
	cfg := s.Config().CRM
	id := r.Header.Get("X-Tidio-Openapi-Client-Id")
	secret := r.Header.Get("X-Tidio-Openapi-Client-Secret")
	if cfg.ClientID == "" || cfg.ClientSecret == "" ||
		subtle.ConstantTimeCompare([]byte(id), []byte(cfg.ClientID)) != 1 ||
		subtle.ConstantTimeCompare([]byte(secret), []byte(cfg.ClientSecret)) != 1 {
		tidioError(w, http.StatusUnauthorized, "unauthorized", "Invalid OpenAPI client credentials")
		return false
	}
	return true
}

// tidioListContacts is GET /contacts[?email=][&cursor=].
func (s *Sandbox) tidioListContacts(w http.ResponseWriter, r *http.Request, _ []byte) (int, string) {
	if !s.tidioAuthorized(w, r) {
		return http.StatusUnauthorized, "bad credentials"
	}
	q := r.URL.Query()
	email := q.Get("email")
	if q.Has("email") && !tidioValidEmail(email) {
		return tidioError(w, http.StatusUnprocessableEntity, "invalid_email", "email must be a full, valid email address"), "invalid email filter"
	}
	start := 0
	if c := q.Get("cursor"); c != "" {
		n, err := strconv.Atoi(c)
		if err != nil || n < 0 {
			return tidioError(w, http.StatusBadRequest, "invalid_cursor", "cursor is not valid"), "bad cursor"
		}
		start = n
	}
	st := s.tidioState()
	st.mu.Lock()
	var matched []map[string]any
	for _, c := range st.contacts {
		if email == "" || strings.EqualFold(tidioStr(c["email"]), email) {
			matched = append(matched, tidioCopy(c))
		}
	}
	st.mu.Unlock()
	var cursor any
	page := []map[string]any{}
	if start < len(matched) {
		end := min(start+tidioPageSize, len(matched))
		page = matched[start:end]
		if end < len(matched) {
			cursor = strconv.Itoa(end)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"contacts": page, "meta": map[string]any{"cursor": cursor, "limit": tidioPageSize}})
	return http.StatusOK, fmt.Sprintf("%d contact(s)", len(page))
}

// tidioGetContact is GET /contacts/{id}.
func (s *Sandbox) tidioGetContact(w http.ResponseWriter, r *http.Request, _ []byte) (int, string) {
	if !s.tidioAuthorized(w, r) {
		return http.StatusUnauthorized, "bad credentials"
	}
	st := s.tidioState()
	st.mu.Lock()
	c := st.find(r.PathValue("id"))
	if c != nil {
		c = tidioCopy(c)
	}
	st.mu.Unlock()
	if c == nil {
		return tidioError(w, http.StatusNotFound, "not_found", "Contact not found"), "no such contact"
	}
	writeJSON(w, http.StatusOK, c)
	return http.StatusOK, ""
}

// tidioCreateContact is POST /contacts: never an upsert, so a second contact
// with an email already known is refused.
func (s *Sandbox) tidioCreateContact(w http.ResponseWriter, r *http.Request, body []byte) (int, string) {
	if !s.tidioAuthorized(w, r) {
		return http.StatusUnauthorized, "bad credentials"
	}
	fields, status, code, msg := tidioFieldsOf(body)
	if status != 0 {
		return tidioError(w, status, code, msg), msg
	}
	if tidioStr(fields["email"]) == "" && tidioStr(fields["first_name"]) == "" && tidioStr(fields["last_name"]) == "" && tidioStr(fields["phone"]) == "" {
		return tidioError(w, http.StatusUnprocessableEntity, "validation_error", "one of email, first_name, last_name or phone is required"), "empty contact"
	}
	st := s.tidioState()
	st.mu.Lock()
	defer st.mu.Unlock()
	if email := tidioStr(fields["email"]); email != "" && st.findByEmail(email, "") != nil {
		return tidioError(w, http.StatusUnprocessableEntity, "contact_already_exists", "A contact with this email already exists"), "duplicate email"
	}
	fields["id"] = tidioID()
	fields["created_at"] = time.Now().UTC().Format(time.RFC3339)
	st.contacts = append(st.contacts, fields)
	writeJSON(w, http.StatusCreated, map[string]any{"id": fields["id"]})
	return http.StatusCreated, "created " + fields["id"].(string)
}

// tidioUpdateContact is PATCH /contacts/{id}: the fields given change, the
// others stay.
func (s *Sandbox) tidioUpdateContact(w http.ResponseWriter, r *http.Request, body []byte) (int, string) {
	if !s.tidioAuthorized(w, r) {
		return http.StatusUnauthorized, "bad credentials"
	}
	fields, status, code, msg := tidioFieldsOf(body)
	if status != 0 {
		return tidioError(w, status, code, msg), msg
	}
	id := r.PathValue("id")
	st := s.tidioState()
	st.mu.Lock()
	defer st.mu.Unlock()
	c := st.find(id)
	if c == nil {
		return tidioError(w, http.StatusNotFound, "not_found", "Contact not found"), "no such contact"
	}
	if email := tidioStr(fields["email"]); email != "" && st.findByEmail(email, id) != nil {
		return tidioError(w, http.StatusUnprocessableEntity, "contact_already_exists", "A contact with this email already exists"), "duplicate email"
	}
	for k, v := range fields {
		c[k] = v
	}
	writeJSON(w, http.StatusOK, tidioCopy(c))
	return http.StatusOK, "updated " + id
}

// tidioFieldsOf decodes and checks a contact body; status is 0 when it is
// acceptable.
func tidioFieldsOf(body []byte) (fields map[string]any, status int, code, msg string) {
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return nil, http.StatusBadRequest, "invalid_json", "The request body is not a JSON object"
	}
	for k, v := range fields {
		if !tidioFields[k] {
			return nil, http.StatusUnprocessableEntity, "validation_error", fmt.Sprintf("%s is not a contact field", k)
		}
		if _, ok := v.(string); !ok && v != nil {
			return nil, http.StatusUnprocessableEntity, "validation_error", k + " must be a string"
		}
	}
	if email, ok := fields["email"]; ok && email != nil && !tidioValidEmail(tidioStr(email)) {
		return nil, http.StatusUnprocessableEntity, "invalid_email", "email must be a valid email address"
	}
	return fields, 0, "", ""
}

func (st *tidioState) find(id string) map[string]any {
	for _, c := range st.contacts {
		if c["id"] == id {
			return c
		}
	}
	return nil
}

// findByEmail returns the contact with email other than the one with id
// except.
func (st *tidioState) findByEmail(email, except string) map[string]any {
	for _, c := range st.contacts {
		if c["id"] != except && strings.EqualFold(tidioStr(c["email"]), email) {
			return c
		}
	}
	return nil
}

func tidioError(w http.ResponseWriter, status int, code, message string) int {
	writeJSON(w, status, map[string]any{"errors": []map[string]string{{"code": code, "message": message}}})
	return status
}

// validEmail accepts a bare address (no display name) with a domain.
func tidioValidEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s && strings.Contains(s[strings.LastIndex(s, "@")+1:], ".")
}

func tidioStr(v any) string {
	s, _ := v.(string)
	return s
}

func tidioCopy(c map[string]any) map[string]any {
	out := make(map[string]any, len(c))
	for k, v := range c {
		out[k] = v
	}
	return out
}

func tidioID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
