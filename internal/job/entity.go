package job

import (
	"regexp"
	"strconv"
)

// Entitied is implemented by payloads that name the business entity they are
// for ("user:42", "order:1001"): the timeline lists every job of one entity.
// A type that does not implement it (ops:* jobs) has none.
type Entitied interface {
	Entity() string
}

// entityForm is what an entity looks like: a lower-case kind, a colon and an
// id of letters, digits, '-', '_' or '.'.
var entityForm = regexp.MustCompile(`^[a-z][a-z_]{0,31}:[A-Za-z0-9._-]{1,64}$`)

// ValidEntity reports whether s is an entity's name ("user:42").
func ValidEntity(s string) bool { return entityForm.MatchString(s) }

// UserEntity and OrderEntity name the two kinds of entity errand's jobs are
// for; an id of zero or less names none.
func UserEntity(id int64) string  { return entityOf("user", id) }
func OrderEntity(id int64) string { return entityOf("order", id) }

func entityOf(kind string, id int64) string {
	if id <= 0 {
		return ""
	}
	return kind + ":" + strconv.FormatInt(id, 10)
}

// Entity returns the entity payload names, "" when it names none or does
// not decode.
func (d *Definition) Entity(payload []byte) string {
	if d == nil || d.entity == nil {
		return ""
	}
	return d.entity(payload)
}
