// Package tidio keeps contacts on Tidio, the marketing platform, through its
// OpenAPI: GET /contacts?email= to find one, POST /contacts to create one (201
// {"id"}; Tidio never upserts, it refuses a second contact with the same
// email), PATCH /contacts/{id} to change one. Requests carry the project's
// X-Tidio-Openapi-Client-Id and X-Tidio-Openapi-Client-Secret; errors answer
// {"errors":[{"code","message"}]}; a 429 says nothing of when to come back, so
// the client waits for the next minute window of Tidio's per-minute limit.
package tidio

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/outbound"
	"github.com/go-resty/resty/v2"
)

// DefaultBaseURL is Tidio's OpenAPI address.
const DefaultBaseURL = "https://api.tidio.com"

// accept is the media type Tidio's OpenAPI versions its answers by.
const accept = "application/json; version=1"

// Client calls the contacts API for one project.
type Client struct {
	rc   *resty.Client
	gate outbound.Gate // [limits.tidio]; nil lets every call go
}

// WithGate makes every call ask g first ([limits.tidio]) and tell it the
// outcome; it returns c.
func (c *Client) WithGate(g outbound.Gate) *Client { c.gate = g; return c }

// call makes one request through the gate and classifies its answer: the
// one place the client sends anything.
func (c *Client) call(ctx context.Context, op string, send func(r *resty.Request) (*resty.Response, error)) (*resty.Response, error) {
	var resp *resty.Response
	err := outbound.Call(ctx, c.gate, "tidio", func() error {
		var err error
		resp, err = send(c.rc.R().SetContext(ctx))
		return c.check(op, resp, err)
	})
	return resp, err
}

// New returns a client for the [crm] settings: crm.base_url (empty for
// DefaultBaseURL) with the project's OpenAPI credentials. timeout 0 means the
// outbound default.
func New(cfg Config, timeout time.Duration) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("tidio: not configured: %w", err)
	}
	base := cfg.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	rc := outbound.New(base, timeout).
		SetHeader("Accept", accept).
		SetHeader("X-Tidio-Openapi-Client-Id", cfg.ClientID).
		SetHeader("X-Tidio-Openapi-Client-Secret", cfg.ClientSecret)
	return &Client{rc: rc}, nil
}

// Contact is a contact as Tidio lists it.
type Contact struct {
	ID        string `json:"id"`
	Email     string `json:"email"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
}

// FindByEmail returns the contact with email, or nil when Tidio has none.
func (c *Client) FindByEmail(ctx context.Context, email string) (*Contact, error) {
	resp, err := c.call(ctx, "find contact", func(r *resty.Request) (*resty.Response, error) {
		return r.SetQueryParam("email", email).Get("/contacts")
	})
	if err != nil {
		return nil, err
	}
	var page struct {
		Contacts []Contact `json:"contacts"`
	}
	if err := json.Unmarshal(resp.Body(), &page); err != nil {
		return nil, errand.TransientError(fmt.Errorf("tidio: find contact: unreadable answer: %w", err))
	}
	// The filter is Tidio's; the exact match is checked here so a looser
	// search never updates someone else.
	for i := range page.Contacts {
		if strings.EqualFold(page.Contacts[i].Email, email) {
			return &page.Contacts[i], nil
		}
	}
	return nil, nil
}

// Create adds a contact with fields (email, first_name, last_name, …) and
// returns its id.
func (c *Client) Create(ctx context.Context, fields map[string]string) (string, error) {
	resp, err := c.call(ctx, "create contact", func(r *resty.Request) (*resty.Response, error) {
		return r.SetBody(fields).Post("/contacts")
	})
	if err != nil {
		return "", err
	}
	var created struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(resp.Body(), &created); err != nil || created.ID == "" {
		// The contact exists now; the job's retry finds it by email.
		return "", errand.TransientError(fmt.Errorf("tidio: create contact: HTTP %d without the new contact's id", resp.StatusCode()))
	}
	return created.ID, nil
}

// Update sets fields on the contact id, leaving the others as they are.
func (c *Client) Update(ctx context.Context, id string, fields map[string]string) error {
	_, err := c.call(ctx, "update contact", func(r *resty.Request) (*resty.Response, error) {
		return r.SetPathParam("id", id).SetBody(fields).Patch("/contacts/{id}")
	})
	return err
}

// check classifies a call's outcome: 429 waits for the next minute window,
// the rest as outbound.Classify says.
func (c *Client) check(op string, resp *resty.Response, err error) error {
	if err != nil || resp.IsSuccess() {
		return outbound.Check("tidio", op, resp, err, 0)
	}
	se := &outbound.StatusError{Service: "tidio", Op: op, Status: resp.StatusCode(), Body: describe(resp.Body())}
	return outbound.Classify(se, resp.Header(), NextWindow(resp.Header(), time.Now()))
}

// NextWindow is how long until Tidio's next minute window opens: by Tidio's
// clock (the answer's Date) when it sent one, since the window is Tidio's,
// else by now; at least a second.
func NextWindow(h http.Header, now time.Time) time.Duration {
	if d, err := http.ParseTime(h.Get("Date")); err == nil {
		now = d
	}
	wait := now.Truncate(time.Minute).Add(time.Minute).Sub(now)
	return max(wait, time.Second)
}

// describe turns {"errors":[{"code","message"}]} into "code: message; …", or
// returns the body as it is when it is not that.
func describe(body []byte) string {
	var e struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &e) != nil || len(e.Errors) == 0 {
		return string(body)
	}
	parts := make([]string, 0, len(e.Errors))
	for _, x := range e.Errors {
		switch {
		case x.Code != "" && x.Message != "":
			parts = append(parts, x.Code+": "+x.Message)
		default:
			parts = append(parts, x.Code+x.Message)
		}
	}
	return strings.Join(parts, "; ")
}
