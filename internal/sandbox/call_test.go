package sandbox_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/errandhq/errand/internal/sandbox"
	"github.com/errandhq/errand/internal/tidio"
	"github.com/errandhq/errand/internal/tidio/tidiotest"
)

// A fault with call applies only to those calls, by method, by method and
// path, or by the fake's route; other calls pass and leave it in place.
func TestFaultForOneCall(t *testing.T) {
	s := sandbox.Of(tidiotest.New(tidio.Config{ClientID: "id", ClientSecret: "secret"}))
	do := func(method, path, body string) int {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		r.Header.Set("X-Tidio-Openapi-Client-Id", "id")
		r.Header.Set("X-Tidio-Openapi-Client-Secret", "secret")
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, r)
		return w.Code
	}
	s.AddFault(sandbox.Fault{Service: tidiotest.Service, Call: "POST /contacts", Status: 500, Count: 1})
	s.AddFault(sandbox.Fault{Service: tidiotest.Service, Call: "PATCH /contacts/{id}", Status: 502, Count: 1})
	s.AddFault(sandbox.Fault{Service: tidiotest.Service, Call: "GET", Status: 503, Count: 1})
	got := []int{
		do("POST", "/contacts", `{"email":"ada@shop.test"}`), // the create's fault
		do("GET", "/contacts?email=ada@shop.test", ""),       // GET's
		do("GET", "/contacts?email=ada@shop.test", ""),       // passes
		do("POST", "/contacts", `{"email":"bob@shop.test"}`), // passes
		do("PATCH", "/contacts/nope", `{"first_name":"A"}`),  // the route's fault
		do("PATCH", "/contacts/nope", `{"first_name":"A"}`),  // passes: unknown contact
	}
	want := []int{500, 503, 200, 201, 502, 404}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("answers %v, want %v", got, want)
		}
	}
	if len(s.Calls("")) != 6 {
		t.Fatalf("calls %v", s.Calls(""))
	}
}
