package config

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/knadh/koanf/parsers/toml/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
)

// loadFile merges the TOML file at path into k. A syntax error names the
// line, and a key Config does not have stops errand, naming the closest key
// it has: a typo would otherwise leave its setting at the default unnoticed.
func loadFile(k *koanf.Koanf, path string) error {
	fk := koanf.New(".")
	if err := fk.Load(file.Provider(path), toml.Parser()); err != nil {
		// go-toml's DecodeError knows where the file broke; its message
		// alone does not say.
		var at interface{ Position() (row, column int) }
		if errors.As(err, &at) {
			row, col := at.Position()
			return fmt.Errorf("config: %s:%d:%d: %w", path, row, col, err)
		}
		return fmt.Errorf("config: %s: %w", path, err)
	}
	if bad := unknownKeys(fk.Raw(), reflect.TypeFor[Config]()); len(bad) > 0 {
		return fmt.Errorf("config: %s: %s", path, strings.Join(bad, "; "))
	}
	if err := k.Merge(fk); err != nil {
		return fmt.Errorf("config: %s: %w", path, err)
	}
	return nil
}

// fromEnv reads the ERRAND_<SECTION>__<KEY> variables of environ as config
// keys. One that names no setting stops errand, naming the closest one, as
// does ERRAND_<SECTION>_<KEY> with one underscore (a typo for two).
// Variables without "__" that start with no section's name (ERRAND_TOKEN,
// ERRAND_DEV_API_TOKEN) are not errand's settings and are left alone.
func fromEnv(k *koanf.Koanf, environ []string) (vals map[string]any, names map[string]string, err error) {
	vals, names = map[string]any{}, map[string]string{}
	var bad []string
	for _, kv := range environ {
		key, val, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(key, EnvPrefix) {
			continue
		}
		name := strings.ToLower(strings.TrimPrefix(key, EnvPrefix))
		if !strings.Contains(name, "__") {
			for _, s := range sections() {
				if name == s {
					_, example := envKey([]string{s})
					bad = append(bad, fmt.Sprintf("%s is not a setting ([%s] is a table; set its keys, e.g. %s)", key, s, example))
					break
				}
				if rest, ok := strings.CutPrefix(name, s+"_"); ok {
					hint := envName([]string{s, rest})
					if known, closest := envKey([]string{s, rest}); !known {
						hint = closest
					}
					bad = append(bad, fmt.Sprintf("%s is not a setting (did you mean %s?)", key, hint))
					break
				}
			}
			continue
		}
		path := strings.Split(name, "__")
		if known, closest := envKey(path); !known {
			bad = append(bad, fmt.Sprintf("%s is not a setting (did you mean %s?)", key, closest))
			continue
		}
		dotted := strings.Join(path, ".")
		vals[dotted] = envValue(k, dotted, val)
		names[dotted] = key
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return nil, nil, fmt.Errorf("config: %s", strings.Join(bad, "; "))
	}
	return vals, names, nil
}

func cleanDecodeError(err error) error {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "decoding failed due to the following error(s):\n\n")
	return errors.New(strings.TrimSpace(msg))
}

// badValues checks every value k holds against the type of its key in
// Config, naming the key (or the variable in env it came from), the value
// and what was expected, instead of the decoder's strconv wording.
func badValues(k *koanf.Koanf, env map[string]string) []string {
	var bad []string
	for _, key := range k.Keys() {
		t, ok := typeOf(strings.Split(key, "."))
		if !ok {
			continue
		}
		v := k.Get(key)
		var want string
		if t.Kind() == reflect.Slice && t != reflect.TypeFor[[]byte]() {
			list := reflect.ValueOf(v)
			if list.Kind() != reflect.Slice {
				continue
			}
			for i := range list.Len() {
				if w := expected(deref(t.Elem()), list.Index(i).Interface()); w != "" {
					want, v = "a list whose every item is "+w, list.Index(i).Interface()
					break
				}
			}
		} else {
			want = expected(t, v)
		}
		if want == "" {
			continue
		}
		if name, ok := env[key]; ok {
			bad = append(bad, fmt.Sprintf("%s=%s (%s): must be %s", name, show(v), key, want))
			continue
		}
		bad = append(bad, fmt.Sprintf("%s = %s: must be %s", key, show(v), want))
	}
	sort.Strings(bad)
	return bad
}

// expected says what a value of type t must look like when v is not one,
// or returns "".
func expected(t reflect.Type, v any) string {
	if v != nil && reflect.TypeOf(v) == t {
		return "" // a default, already of its type
	}
	s, isText := v.(string)
	switch {
	case t == reflect.TypeFor[time.Duration]():
		if !isText {
			return `a duration like "30s" or "5m"`
		}
		if _, err := time.ParseDuration(strings.TrimSpace(s)); err != nil {
			return `a duration like "30s" or "5m"`
		}
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		switch n := v.(type) {
		case string:
			if _, err := strconv.ParseInt(strings.TrimSpace(n), 10, t.Bits()); err != nil {
				return "a whole number" + rangeOf(t)
			}
		case float64:
			if n != float64(int64(n)) {
				return "a whole number"
			}
		case bool:
			return "a whole number"
		}
	case t.Kind() == reflect.Bool:
		switch b := v.(type) {
		case string:
			if _, err := strconv.ParseBool(strings.TrimSpace(b)); err != nil {
				return "true or false"
			}
		case bool:
		default:
			return "true or false"
		}
	}
	return ""
}

func rangeOf(t reflect.Type) string {
	if t.Bits() < 64 {
		return fmt.Sprintf(" from %d to %d", -(int64(1) << (t.Bits() - 1)), int64(1)<<(t.Bits()-1)-1)
	}
	return ""
}

func show(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprint(v)
}

// typeOf is the type of the value at path in Config, or false when path is
// no value's key.
func typeOf(path []string) (reflect.Type, bool) {
	t := deref(reflect.TypeFor[Config]())
	for _, seg := range path {
		switch {
		case isTable(t):
			ft, ok := fields(t)[seg]
			if !ok {
				return nil, false
			}
			t = deref(ft)
		case t.Kind() == reflect.Map:
			t = deref(t.Elem())
		default:
			return nil, false
		}
	}
	if isTable(t) || t.Kind() == reflect.Map || t.Kind() == reflect.Interface {
		return nil, false
	}
	return t, true
}
