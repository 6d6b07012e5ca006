package config

import (
	"reflect"
	"strings"
)

// Keys returns every setting in c under the key config.toml gives it
// ("smtp.port", "queues.emails", "notify.reps.alice.name"), read from the
// koanf tags. Load takes the defaults from Default().Keys(), so a field a
// service adds to its Config has its default without a second list; tests
// use it to compare config.toml with the defaults and to write a config.
// Nil pointers are left out; lists are kept whole.
func (c *Config) Keys() map[string]any {
	out := map[string]any{}
	flatten(out, "", reflect.ValueOf(c).Elem())
	return out
}

func flatten(out map[string]any, key string, v reflect.Value) {
	join := func(name string) string {
		if key == "" {
			return name
		}
		return key + "." + name
	}
	switch v.Kind() {
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("koanf"), ",")
			if name == "" || name == "-" || !t.Field(i).IsExported() {
				continue
			}
			flatten(out, join(name), v.Field(i))
		}
	case reflect.Map:
		iter := v.MapRange()
		for iter.Next() {
			flatten(out, join(iter.Key().String()), iter.Value())
		}
	case reflect.Pointer:
		if !v.IsNil() {
			flatten(out, key, v.Elem())
		}
	default:
		out[key] = v.Interface()
	}
}
