package outbound

import (
	"io"
	"net/http"
)

// sendOnce keeps Go's transport from sending a request again by itself.
// net/http re-sends a GET (or any request it deems idempotent) when a kept-
// alive connection closes before the answer comes: the service may have
// received and acted on the first, and the failure policy would never know of
// the second. errand sends each request once; a lost answer is a transient
// failure the policy sees, logs and retries as an attempt. A request that
// never left (nothing written, or refused by an HTTP/2 server before it was
// processed) may still go again: the service has not seen it.
//
// The transport re-sends only a request whose body it can rewind (none, or
// GetBody set) and whose method or Idempotency-Key marks it idempotent; a
// body that cannot be rewound makes it one it will not re-send.
type sendOnce struct{ next http.RoundTripper }

func (s sendOnce) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body == nil || r.Body == http.NoBody || r.GetBody != nil {
		r = r.Clone(r.Context())
		if r.Body == nil || r.Body == http.NoBody {
			// An empty body sends nothing: the transport finds it empty
			// before writing the request, which goes out as it would have.
			r.Body, r.ContentLength = emptyBody{}, 0
		}
		r.GetBody = nil
	}
	return s.next.RoundTrip(r)
}

type emptyBody struct{}

func (emptyBody) Read([]byte) (int, error) { return 0, io.EOF }
func (emptyBody) Close() error             { return nil }
