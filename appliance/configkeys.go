package appliance

import (
	"encoding"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strings"
)

// unknownKeys returns the keys of raw, a configuration as koanf holds it
// (nested maps, lists of maps), that no field of t reads, in order. A key
// is matched as the unmarshaller matches it: by the field's koanf tag,
// without regard to case. Inside a list, each item is checked against the
// list's element type and named key[i].
func unknownKeys(raw map[string]any, t reflect.Type) []string {
	var out []string
	walkKeys(raw, t, "", &out)
	sort.Strings(out)
	return out
}

func walkKeys(v any, t reflect.Type, path string, out *[]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if isLeafType(t) {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return // a scalar where a section belongs: the unmarshaller says so
		}
		fields := structKeys(t)
		for k, sub := range m {
			f, ok := fields[strings.ToLower(k)]
			// The unmarshaller matches a key in another case only when the
			// map lacks the exact one; the defaults hold every section's
			// keys, so there State_Dir is never read.
			if ok && k != strings.ToLower(k) && hasKeyExactly(m, strings.ToLower(k)) {
				ok = false
			}
			if !ok {
				leafKeys(sub, joinKey(path, k), out)
				continue
			}
			walkKeys(sub, f, joinKey(path, k), out)
		}
	case reflect.Slice, reflect.Array:
		items, ok := v.([]any)
		if !ok {
			return
		}
		for i, item := range items {
			walkKeys(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i), out)
		}
	case reflect.Map:
		if m, ok := v.(map[string]any); ok {
			for k, sub := range m {
				walkKeys(sub, t.Elem(), joinKey(path, k), out)
			}
		}
	default:
		// A scalar field given a section (listen.quic: {port: 1}) or a
		// list: every key under it is unknown.
		if m, ok := v.(map[string]any); ok {
			for k, sub := range m {
				leafKeys(sub, joinKey(path, k), out)
			}
		}
	}
}

// leafKeys appends the keys of the values under path, an unknown key:
// path itself, or each key inside it when it is a section.
func leafKeys(v any, path string, out *[]string) {
	m, ok := v.(map[string]any)
	if !ok || len(m) == 0 {
		*out = append(*out, path)
		return
	}
	for k, sub := range m {
		leafKeys(sub, joinKey(path, k), out)
	}
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// isLeafType reports whether values of t are decoded whole, from a
// scalar: a struct that unmarshals itself from text (a duration type)
// has no keys of its own.
func isLeafType(t reflect.Type) bool {
	return t.Implements(textUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler)
}

// structKeys maps the lower-cased keys of t's exported fields to their
// types; a field without a koanf tag is read under its own name.
func structKeys(t reflect.Type) map[string]reflect.Type {
	keys := map[string]reflect.Type{}
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("koanf"), ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "squash") {
			for k, ft := range structKeys(f.Type) {
				keys[k] = ft
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		keys[strings.ToLower(name)] = f.Type
	}
	return keys
}

// hasKeyExactly reports whether m holds the key lower itself.
func hasKeyExactly(m map[string]any, lower string) bool {
	_, ok := m[lower]
	return ok
}

func joinKey(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// knownKeyPaths lists every key path t reads, sections included, for
// suggestions; lists stop at their own key.
func knownKeyPaths(t reflect.Type, path string, out *[]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || isLeafType(t) {
		return
	}
	for k, ft := range structKeys(t) {
		p := joinKey(path, k)
		*out = append(*out, p)
		knownKeyPaths(ft, p, out)
	}
}

// unknownKeyError names each unknown key and, where one is close, the
// key that was probably meant.
func unknownKeyError(unknown []string, t reflect.Type) error {
	var known []string
	knownKeyPaths(t, "", &known)
	sort.Strings(known)
	msgs := make([]string, 0, len(unknown))
	for _, k := range unknown {
		msg := "unknown config key " + k
		if s := suggestKey(k, known); s != "" {
			msg += " (did you mean " + s + "?)"
		}
		msgs = append(msgs, msg)
	}
	return fmt.Errorf("%s", strings.Join(msgs, "; "))
}

// suggestKey picks the known key closest to k: one that ends in k (a
// section given at the wrong level), else the nearest of those that end
// in k's last part (broker.username: ingest.broker.external.username),
// else the nearest by edit distance within a third of k's length.
func suggestKey(k string, known []string) string {
	lk := strings.ToLower(k)
	if strings.IndexByte(lk, '[') >= 0 {
		return "" // inside a list item: a key of the whole file misleads
	}
	leaf := lk[strings.LastIndexByte(lk, '.')+1:]
	nearest := func(match func(string) bool, limit int) string {
		best, bestD := "", limit
		for _, c := range known {
			if d := editDistance(lk, c); match(c) && d < bestD {
				best, bestD = c, d
			}
		}
		return best
	}
	for _, s := range []string{
		nearest(func(c string) bool { return strings.HasSuffix(c, "."+lk) || c == lk }, math.MaxInt),
		nearest(func(c string) bool { return strings.HasSuffix(c, "."+leaf) || c == leaf }, math.MaxInt),
		nearest(func(string) bool { return true }, len(lk)/3+1),
	} {
		if s != "" {
			return s
		}
	}
	return ""
}

// editDistance is the Levenshtein distance of a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
