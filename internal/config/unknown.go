package config

import (
	"encoding"
	"fmt"
	"maps"
	"reflect"
	"sort"
	"strings"
)

// The keys errand knows are read from Config's koanf tags, so a key another
// part of errand adds to Config is known without a second list. A struct is a
// table of fixed keys; a map (queues, jobs."<type>", notify.reps.<id>,
// limits.<service>) takes any key, each holding its value's keys; a list of
// tables ([[schedule]]) checks each table; anything else is a value.

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// isTable reports whether t is a table of fixed keys rather than a value
// (a struct that reads itself from text, like time.Time, is a value).
func isTable(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && !reflect.PointerTo(t).Implements(textUnmarshaler)
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// fields returns a table's keys and the type each holds.
func fields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("koanf"), ",")
		if name == "" && opts == "squash" && isTable(deref(f.Type)) {
			// An embedded table's keys are its parent's (mapstructure's squash).
			maps.Copy(out, fields(deref(f.Type)))
			continue
		}
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		out[name] = f.Type
	}
	return out
}

// unknownKeys returns the keys of raw (a config file as koanf reads it, one
// map per table) that t does not have, each with the closest key it has.
func unknownKeys(raw map[string]any, t reflect.Type) []string {
	var out []string
	walkKeys(raw, deref(t), "", &out)
	sort.Strings(out)
	return out
}

func walkKeys(v any, t reflect.Type, prefix string, out *[]string) {
	t = deref(t)
	join := func(k string) string {
		if prefix == "" {
			return k
		}
		return prefix + "." + k
	}
	switch {
	case isTable(t):
		m, ok := v.(map[string]any)
		if !ok {
			return // a value where a table belongs: the decoder names the key
		}
		known := fields(t)
		for k, sub := range m {
			ft, ok := known[k]
			if !ok {
				*out = append(*out, fmt.Sprintf("unknown key %s (the closest known key is %s)", join(k), join(Closest(k, keysOf(known)))))
				continue
			}
			walkKeys(sub, ft, join(k), out)
		}
	case t.Kind() == reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			return
		}
		for k, sub := range m {
			walkKeys(sub, t.Elem(), join(quoteKey(k)), out)
		}
	case t.Kind() == reflect.Slice && isTable(deref(t.Elem())):
		list, ok := v.([]any)
		if !ok {
			return
		}
		for i, item := range list {
			walkKeys(item, t.Elem(), fmt.Sprintf("%s[%d]", prefix, i), out)
		}
	}
}

// quoteKey writes a free key as config.toml would need it: jobs."user:sync_crm".
func quoteKey(k string) string {
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return fmt.Sprintf("%q", k)
		}
	}
	return k
}

func keysOf(m map[string]reflect.Type) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// envKey checks the setting an ERRAND_… variable names (path is its name
// without the prefix, lower case, split at "__"): known when Config has that
// key, else the closest key it has, as a variable name.
func envKey(path []string) (known bool, closest string) {
	t := deref(reflect.TypeFor[Config]())
	var done []string
	for i, seg := range path {
		switch {
		case isTable(t):
			known := fields(t)
			ft, ok := known[seg]
			if !ok {
				return false, envName(append(done, closestPath(seg, path[i+1:], known)...))
			}
			done = append(done, seg)
			t = deref(ft)
		case t.Kind() == reflect.Map:
			done = append(done, seg)
			t = deref(t.Elem())
		default:
			// A value has no keys under it (and a list of tables cannot be
			// set from the environment).
			return false, envName(done)
		}
	}
	if isTable(t) || t.Kind() == reflect.Map {
		// A table, not a setting: name its first key.
		if isTable(t) {
			return false, envName(append(done, keysOf(fields(t))[0]))
		}
		return false, envName(append(done, "<name>"))
	}
	return true, ""
}

// closestPath is the closest key to seg among known, followed by the rest of
// the path when the rest is a key under it (ERRAND_SMPT__HOST → smtp, host).
func closestPath(seg string, rest []string, known map[string]reflect.Type) []string {
	best := Closest(seg, keysOf(known))
	t := deref(known[best])
	if len(rest) > 0 && isTable(t) {
		if _, ok := fields(t)[rest[0]]; ok {
			return []string{best, rest[0]}
		}
	}
	return []string{best}
}

func envName(path []string) string {
	return EnvPrefix + strings.ToUpper(strings.Join(path, "__"))
}

// sections are Config's top-level keys, each a table.
func sections() []string { return keysOf(fields(reflect.TypeFor[Config]())) }

// Closest returns the word of candidates nearest to w (fewest single-letter
// edits, ties to the first), for "did you mean" hints.
func Closest(w string, candidates []string) string {
	best, bestD := "", -1
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(w), strings.ToLower(c)); bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, with a swap of
// two neighbouring letters counted as one edit (hots → host).
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
