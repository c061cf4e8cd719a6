package provisioner

import (
	"math"
	"reflect"
	"strconv"
)

// maxDepth bounds how deeply a body may nest objects and arrays; the
// deepest request type (a pool's health policy) needs 2, a workerConfig a
// few more.
const maxDepth = 64

// present records the struct fields a body carried, by dotted path
// (facts.hostname, health[0].name), so that a validator can tell a field
// sent as 0 or "" from one left out.
type present map[string]bool

// strictCheck walks data against t before encoding/json decodes it, and
// refuses what encoding/json would let through: names that differ from the
// declared ones only in case, duplicate keys (at any depth), invalid UTF-8,
// lone UTF-16 surrogates and U+0000 in strings, null where a value is
// expected, numbers out of the field's range, missing required fields
// (requiredFields), more than one JSON value, and nesting deeper than
// maxDepth. Inside a json.RawMessage (workerConfig) any JSON value is
// accepted but the UTF-8, duplicate and depth rules still hold.
func strictCheck(data []byte, t reflect.Type) (present, *apiError) {
	w := &strictWalker{sc: jsonScanner{data: data}, seen: present{}}
	if !w.sc.more() {
		return nil, badField("(body)", "request body is empty: send a JSON object (at least {})")
	}
	if aerr := w.value(t, "", 0); aerr != nil {
		return nil, aerr
	}
	if w.sc.more() {
		return nil, badField("(body)", "unexpected data after the JSON value at byte %d: send exactly one object", w.sc.pos)
	}
	return w.seen, nil
}

type strictWalker struct {
	sc   jsonScanner
	seen present
}

// problem turns a scanner error into an answer naming field.
func problem(field string, err *scanError) *apiError {
	return badField(orBody(field), "%s (at byte %d)", err.msg, err.offset)
}

// value checks the value of type t at path.
func (w *strictWalker) value(t reflect.Type, path string, depth int) *apiError {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	field := orBody(path)
	c := w.sc.peek()
	if t == rawMessageType || t.Kind() == reflect.Interface {
		return w.anyValue(path, depth)
	}
	got := jsonKind(c)
	switch {
	case got == "":
		return problem(path, w.sc.syntax("expected a value"))
	case got == "null":
		return badField(field, "must be %s, not null: leave an optional field out instead of sending null", expected(t))
	case t == timeType:
		if got != "a string" {
			return mismatch(field, t, got)
		}
		return w.scalar(path)
	}
	switch t.Kind() {
	case reflect.Struct:
		if got != "an object" {
			return mismatch(field, t, got)
		}
		return w.object(t, path, depth)
	case reflect.Map:
		if got != "an object" || t.Key().Kind() != reflect.String {
			return mismatch(field, t, got)
		}
		return w.members(path, depth, func(_, kpath string) *apiError {
			return w.value(t.Elem(), kpath, depth+1)
		})
	case reflect.Slice, reflect.Array:
		if got != "an array" {
			return mismatch(field, t, got)
		}
		return w.elements(path, depth, func(epath string) *apiError {
			return w.value(t.Elem(), epath, depth+1)
		})
	case reflect.String:
		if got != "a string" {
			return mismatch(field, t, got)
		}
		return w.scalar(path)
	case reflect.Bool:
		if got != "true" && got != "false" {
			return mismatch(field, t, got)
		}
		return w.scalar(path)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, aerr := w.numberOf(field, t, got)
		if aerr != nil {
			return aerr
		}
		if _, err := strconv.ParseInt(n, 10, t.Bits()); err != nil {
			lo, hi := -int64(1)<<(t.Bits()-1), int64(1)<<(t.Bits()-1)-1
			return badField(field, "%s is not an integer from %d to %d", n, lo, hi)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, aerr := w.numberOf(field, t, got)
		if aerr != nil {
			return aerr
		}
		if _, err := strconv.ParseUint(n, 10, t.Bits()); err != nil {
			return badField(field, "%s is not an integer from 0 to %d", n, uint64(math.MaxUint64)>>(64-t.Bits()))
		}
	case reflect.Float32, reflect.Float64:
		n, aerr := w.numberOf(field, t, got)
		if aerr != nil {
			return aerr
		}
		if _, err := strconv.ParseFloat(n, t.Bits()); err != nil {
			return badField(field, "%s is out of range for a number", n)
		}
	default:
		return badField(field, "this field cannot be set through the API")
	}
	return nil
}

// numberOf reads a number where t expects one.
func (w *strictWalker) numberOf(field string, t reflect.Type, got string) (string, *apiError) {
	if got != "a number" {
		return "", mismatch(field, t, got)
	}
	n, err := w.sc.number()
	if err != nil {
		return "", problem(field, err)
	}
	return string(n), nil
}

// scalar reads a string, number, true, false or null at path.
func (w *strictWalker) scalar(path string) *apiError {
	var err *scanError
	switch c := w.sc.peek(); c {
	case '"':
		_, _, err = w.sc.str()
	case 't':
		err = w.sc.literal("true")
	case 'f':
		err = w.sc.literal("false")
	case 'n':
		err = w.sc.literal("null")
	default:
		_, err = w.sc.number()
	}
	if err != nil {
		return problem(path, err)
	}
	return nil
}

// object checks a JSON object against struct t: exact names, no
// duplicates, required fields present.
func (w *strictWalker) object(t reflect.Type, path string, depth int) *apiError {
	fields := jsonFields(t)
	required := requiredFields[t]
	var got uint64 // bit i: required[i] was sent
	aerr := w.members(path, depth, func(key, kpath string) *apiError {
		ft, ok := fields[key]
		if !ok {
			if name := caseVariant(fields, key); name != "" {
				return badField(kpath, "unknown field %q: field names are case-sensitive, did you mean %q?", key, name)
			}
			return badField(kpath, "unknown field %q: remove it or check its spelling", key)
		}
		for i, r := range required {
			if r.name == key {
				got |= 1 << i
			}
		}
		w.seen[kpath] = true
		return w.value(ft, kpath, depth+1)
	})
	if aerr != nil {
		return aerr
	}
	for i, r := range required {
		if got&(1<<i) == 0 {
			return badField(join(path, r.name), "missing: %s", r.hint)
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// members reads an object, checking each key and refusing duplicates, and
// calls f to read each member's value.
func (w *strictWalker) members(path string, depth int, f func(key, kpath string) *apiError) *apiError {
	if depth >= maxDepth {
		return badField(orBody(path), "nested more than %d levels deep", maxDepth)
	}
	w.sc.pos++ // '{'
	if w.sc.peek() == '}' {
		w.sc.pos++
		return nil
	}
	var keys keySet
	keys.list = keys.small[:0]
	for {
		if w.sc.peek() != '"' {
			return problem(path, w.sc.syntax("expected a member name in quotes"))
		}
		raw, escaped, err := w.sc.str()
		if err != nil {
			return problem(path, err)
		}
		key := decodeKey(raw, escaped)
		kpath := join(path, key)
		if key == "" {
			kpath = join(path, `""`)
		}
		if keys.add(key) {
			return badField(kpath, "duplicate key %q: send each field once", key)
		}
		if err := w.sc.expect(':', "':' after a member name"); err != nil {
			return problem(kpath, err)
		}
		if aerr := f(key, kpath); aerr != nil {
			return aerr
		}
		switch w.sc.peek() {
		case ',':
			w.sc.pos++
		case '}':
			w.sc.pos++
			return nil
		default:
			return problem(path, w.sc.syntax("expected ',' or '}' after a member"))
		}
	}
}

// elements reads an array and calls f to read each element.
func (w *strictWalker) elements(path string, depth int, f func(epath string) *apiError) *apiError {
	if depth >= maxDepth {
		return badField(orBody(path), "nested more than %d levels deep", maxDepth)
	}
	w.sc.pos++ // '['
	if w.sc.peek() == ']' {
		w.sc.pos++
		return nil
	}
	for i := 0; ; i++ {
		if aerr := f(path + "[" + strconv.Itoa(i) + "]"); aerr != nil {
			return aerr
		}
		switch w.sc.peek() {
		case ',':
			w.sc.pos++
		case ']':
			w.sc.pos++
			return nil
		default:
			return problem(path, w.sc.syntax("expected ',' or ']' after an element"))
		}
	}
}

// anyValue checks a free-form value (a json.RawMessage): any JSON, with
// the UTF-8, duplicate-key and depth rules.
func (w *strictWalker) anyValue(path string, depth int) *apiError {
	switch jsonKind(w.sc.peek()) {
	case "an object":
		return w.members(path, depth, func(_, kpath string) *apiError { return w.anyValue(kpath, depth+1) })
	case "an array":
		return w.elements(path, depth, func(epath string) *apiError { return w.anyValue(epath, depth+1) })
	case "":
		return problem(path, w.sc.syntax("expected a value"))
	}
	return w.scalar(path)
}

// keySet finds duplicate keys: a list while an object is small, a map
// once it is not (so a body of many keys stays linear).
type keySet struct {
	small [8]string
	list  []string
	m     map[string]struct{}
}

// add records key and says whether it was there already.
func (k *keySet) add(key string) bool {
	if k.m != nil {
		if _, dup := k.m[key]; dup {
			return true
		}
		k.m[key] = struct{}{}
		return false
	}
	if contains(k.list, key) {
		return true
	}
	k.list = append(k.list, key)
	if len(k.list) > 16 {
		k.m = make(map[string]struct{}, 2*len(k.list))
		for _, s := range k.list {
			k.m[s] = struct{}{}
		}
	}
	return false
}

// jsonKind names the kind of JSON value that starts with c ("" for none).
func jsonKind(c byte) string {
	switch {
	case c == '{':
		return "an object"
	case c == '[':
		return "an array"
	case c == '"':
		return "a string"
	case c == 't':
		return "true"
	case c == 'f':
		return "false"
	case c == 'n':
		return "null"
	case c == '-' || (c >= '0' && c <= '9'):
		return "a number"
	}
	return ""
}

func orBody(path string) string {
	if path == "" {
		return "(body)"
	}
	return path
}

func mismatch(field string, t reflect.Type, got string) *apiError {
	return badField(field, "must be %s, not %s", expected(t), got)
}

// expected says what a value of t looks like in JSON.
func expected(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == timeType {
		return "an RFC 3339 date-time string"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		if t == rawMessageType {
			return "a JSON value"
		}
		return "an array"
	}
	return "an object"
}
