package web

import (
	"encoding/json"
	"reflect"
	"sort"
	"strings"

	"github.com/errandhq/errand/internal/config"
)

// unknownFields names each top-level field of body that v (a pointer to a
// request struct) does not take, with the closest one it does: a typo
// ("salesrep") would otherwise be dropped without a word and its value lost.
// Names match as encoding/json matches them, ignoring case.
func unknownFields(body []byte, v any) map[string]string {
	var got map[string]json.RawMessage
	if json.Unmarshal(body, &got) != nil {
		return nil
	}
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var known []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		known = append(known, name)
	}
	sort.Strings(known)
	out := map[string]string{}
	for name := range got {
		found := false
		for _, k := range known {
			found = found || strings.EqualFold(name, k)
		}
		if !found {
			out[name] = "unknown field; did you mean " + config.Closest(name, known) + "?"
		}
	}
	return out
}
