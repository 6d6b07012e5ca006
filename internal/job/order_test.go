package job_test

import (
	"strings"
	"testing"

	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/job"
)

// byUser is ordered by default, by its user_id field.
type byUser struct {
	UserID int64  `json:"user_id"`
	Email  string `json:"email"`
}

func (byUser) Kind() string           { return "test:by_user" }
func (byUser) Defaults() job.Defaults { return job.Defaults{OrderBy: "user_id"} }

// A type's ordering key is its order_by field's value; [jobs] may change the
// field, turn the order off, or give it to another type, but only for a field
// the payload has.
func TestOrderBy(t *testing.T) {
	reg := job.NewRegistry(config.Default())
	job.Register[byUser](reg, nil)
	job.Register[greeting](reg, nil)
	def, _ := reg.Lookup("test:by_user")
	for payload, want := range map[string]string{
		`{"user_id":42,"email":"a@b.c"}`: "42",
		`{"user_id":"42"}`:               "42", // one key, number or text
		`{"email":"a@b.c"}`:              "",   // no field: unordered
		`{"user_id":null}`:               "",
		`not json`:                       "",
	} {
		got, ok := def.OrderKey([]byte(payload))
		if got != want || ok != (want != "") {
			t.Errorf("OrderKey(%s) = %q, %v; want %q", payload, got, ok, want)
		}
	}

	off, email, bad := "", "email", "nope"
	if err := reg.Configure(map[string]config.Job{"test:by_user": {OrderBy: &email}, "test:greeting": {OrderBy: &off}}); err != nil {
		t.Fatal(err)
	}
	if k, _ := def.OrderKey([]byte(`{"user_id":1,"email":"a@b.c"}`)); k != "a@b.c" {
		t.Fatalf("ordered by email: %q", k)
	}
	if err := reg.Configure(map[string]config.Job{"test:by_user": {OrderBy: &off}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := def.OrderKey([]byte(`{"user_id":1}`)); ok {
		t.Fatal(`order_by = "" must turn the order off`)
	}
	err := reg.Configure(map[string]config.Job{"test:greeting": {OrderBy: &bad}})
	if err == nil || !strings.Contains(err.Error(), `jobs."test:greeting".order_by: "nope" is not a payload field (fields: name)`) {
		t.Fatalf("unknown field: %v", err)
	}
}
