package provisioner

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"unicode/utf8"
)

// maxDepth bounds how deeply a body may nest objects and arrays; the
// deepest request type (a pool's health policy) needs 2, a workerConfig a
// few more.
const maxDepth = 64

// present records the fields a body carried, by dotted path
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
	w := &strictWalker{data: data, seen: present{}}
	w.dec = json.NewDecoder(bytes.NewReader(data))
	w.dec.UseNumber()
	if aerr := w.value(t, "", 0); aerr != nil {
		return nil, aerr
	}
	if _, err := w.dec.Token(); err != io.EOF {
		return nil, badField("(body)", "unexpected data after the JSON value at byte %d: send exactly one object", w.off)
	}
	return w.seen, nil
}

type strictWalker struct {
	dec  *json.Decoder
	data []byte
	off  int64 // end of the last token read
	seen present
}

// next reads one token and returns it with its raw bytes (any separators
// before it included, which are ASCII).
func (w *strictWalker) next(path string) (json.Token, []byte, *apiError) {
	tok, err := w.dec.Token()
	start := w.off
	w.off = w.dec.InputOffset()
	if err != nil {
		var syn *json.SyntaxError
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			if start == 0 && path == "" {
				return nil, nil, badField("(body)", "request body is empty: send a JSON object (at least {})")
			}
			return nil, nil, badField(orBody(path), "truncated JSON: the body ends inside a value")
		case errors.As(err, &syn):
			return nil, nil, badField(orBody(path), "malformed JSON at byte %d: %v", syn.Offset, err)
		}
		return nil, nil, badField(orBody(path), "invalid JSON: %v", err)
	}
	if start > w.off || w.off > int64(len(w.data)) {
		start = w.off
	}
	return tok, w.data[start:w.off], nil
}

// value checks one value of type t at path.
func (w *strictWalker) value(t reflect.Type, path string, depth int) *apiError {
	tok, raw, aerr := w.next(path)
	if aerr != nil {
		return aerr
	}
	if path != "" {
		w.seen[path] = true
	}
	return w.checkValue(t, path, depth, tok, raw)
}

func (w *strictWalker) checkValue(t reflect.Type, path string, depth int, tok json.Token, raw []byte) *apiError {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	field := path
	if field == "" {
		field = "(body)"
	}
	if s, ok := tok.(string); ok {
		if aerr := checkString(field, s, raw); aerr != nil {
			return aerr
		}
	}
	if t == rawMessageType || t.Kind() == reflect.Interface {
		return w.anyValue(path, depth, tok)
	}
	if tok == nil {
		return badField(field, "must be %s, not null: leave an optional field out instead of sending null", expected(t))
	}
	if t == timeType {
		if _, ok := tok.(string); !ok {
			return mismatch(field, t, tok)
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		return w.object(t, path, depth, tok)
	case reflect.Map:
		if t.Key().Kind() != reflect.String || tok != json.Delim('{') {
			return mismatch(field, t, tok)
		}
		return w.members(path, depth, func(key, kpath string, ktok json.Token, kraw []byte) *apiError {
			w.seen[kpath] = true
			return w.checkValue(t.Elem(), kpath, depth+1, ktok, kraw)
		})
	case reflect.Slice, reflect.Array:
		if tok != json.Delim('[') {
			return mismatch(field, t, tok)
		}
		return w.elements(path, depth, func(epath string, etok json.Token, eraw []byte) *apiError {
			w.seen[epath] = true
			return w.checkValue(t.Elem(), epath, depth+1, etok, eraw)
		})
	case reflect.String:
		if _, ok := tok.(string); !ok {
			return mismatch(field, t, tok)
		}
	case reflect.Bool:
		if _, ok := tok.(bool); !ok {
			return mismatch(field, t, tok)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := tok.(json.Number)
		if !ok {
			return mismatch(field, t, tok)
		}
		if _, err := strconv.ParseInt(string(n), 10, t.Bits()); err != nil {
			lo, hi := -int64(1)<<(t.Bits()-1), int64(1)<<(t.Bits()-1)-1
			return badField(field, "%s is not an integer from %d to %d", n, lo, hi)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := tok.(json.Number)
		if !ok {
			return mismatch(field, t, tok)
		}
		if _, err := strconv.ParseUint(string(n), 10, t.Bits()); err != nil {
			return badField(field, "%s is not an integer from 0 to %d", n, uint64(math.MaxUint64)>>(64-t.Bits()))
		}
	case reflect.Float32, reflect.Float64:
		n, ok := tok.(json.Number)
		if !ok {
			return mismatch(field, t, tok)
		}
		if _, err := strconv.ParseFloat(string(n), t.Bits()); err != nil {
			return badField(field, "%s is out of range for a number", n)
		}
	default:
		return badField(field, "this field cannot be set through the API")
	}
	return nil
}

// object checks a JSON object against struct t: exact names, no
// duplicates, required fields present.
func (w *strictWalker) object(t reflect.Type, path string, depth int, tok json.Token) *apiError {
	field := path
	if field == "" {
		field = "(body)"
	}
	if tok != json.Delim('{') {
		return mismatch(field, t, tok)
	}
	fields := jsonFields(t)
	got := map[string]bool{}
	aerr := w.members(path, depth, func(key, kpath string, ktok json.Token, kraw []byte) *apiError {
		ft, ok := fields[key]
		if !ok {
			if name := caseVariant(fields, key); name != "" {
				return badField(kpath, "unknown field %q: field names are case-sensitive, did you mean %q?", key, name)
			}
			return badField(kpath, "unknown field %q: remove it or check its spelling", key)
		}
		got[key] = true
		w.seen[kpath] = true
		return w.checkValue(ft, kpath, depth+1, ktok, kraw)
	})
	if aerr != nil {
		return aerr
	}
	for _, r := range requiredFields[t] {
		if !got[r.name] {
			return badField(join(path, r.name), "missing: %s", r.hint)
		}
	}
	return nil
}

// members reads an object's members after its '{', checking each key and
// refusing duplicates, and passes each value's first token to f.
func (w *strictWalker) members(path string, depth int, f func(key, kpath string, tok json.Token, raw []byte) *apiError) *apiError {
	if depth >= maxDepth {
		return badField(orBody(path), "nested more than %d levels deep", maxDepth)
	}
	keys := map[string]bool{}
	for {
		ktok, kraw, aerr := w.next(path)
		if aerr != nil {
			return aerr
		}
		if ktok == json.Delim('}') {
			return nil
		}
		key, ok := ktok.(string)
		if !ok {
			return badField(orBody(path), "malformed JSON: expected a member name")
		}
		kpath := join(path, key)
		if key == "" {
			kpath = join(path, `""`)
		}
		if aerr := checkString(kpath, key, kraw); aerr != nil {
			return aerr
		}
		if keys[key] {
			return badField(kpath, "duplicate key %q: send each field once", key)
		}
		keys[key] = true
		vtok, vraw, aerr := w.next(kpath)
		if aerr != nil {
			return aerr
		}
		if aerr := f(key, kpath, vtok, vraw); aerr != nil {
			return aerr
		}
	}
}

// elements reads an array's elements after its '[' and passes each
// element's first token to f.
func (w *strictWalker) elements(path string, depth int, f func(epath string, tok json.Token, raw []byte) *apiError) *apiError {
	if depth >= maxDepth {
		return badField(orBody(path), "nested more than %d levels deep", maxDepth)
	}
	for i := 0; ; i++ {
		etok, eraw, aerr := w.next(path)
		if aerr != nil {
			return aerr
		}
		if etok == json.Delim(']') {
			return nil
		}
		if aerr := f(path+"["+strconv.Itoa(i)+"]", etok, eraw); aerr != nil {
			return aerr
		}
	}
}

// anyValue checks a free-form value (a json.RawMessage): any JSON, with
// the UTF-8, duplicate-key and depth rules.
func (w *strictWalker) anyValue(path string, depth int, tok json.Token) *apiError {
	switch tok {
	case json.Delim('{'):
		return w.members(path, depth, func(_, kpath string, ktok json.Token, kraw []byte) *apiError {
			return w.anyMember(kpath, depth, ktok, kraw)
		})
	case json.Delim('['):
		return w.elements(path, depth, func(epath string, etok json.Token, eraw []byte) *apiError {
			return w.anyMember(epath, depth, etok, eraw)
		})
	}
	return nil
}

func (w *strictWalker) anyMember(path string, depth int, tok json.Token, raw []byte) *apiError {
	if s, ok := tok.(string); ok {
		if aerr := checkString(path, s, raw); aerr != nil {
			return aerr
		}
	}
	return w.anyValue(path, depth+1, tok)
}

// checkString refuses a string token whose raw form holds invalid UTF-8
// (encoding/json would turn it into U+FFFD), a lone UTF-16 surrogate
// escape (likewise), or U+0000 (which PostgreSQL cannot store in text).
func checkString(field string, s string, raw []byte) *apiError {
	if !utf8.Valid(raw) {
		return badField(field, "is not valid UTF-8: send text in UTF-8")
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		i++
		if i >= len(raw) || raw[i] != 'u' {
			continue
		}
		r := hex4(raw, i+1)
		i += 4
		switch {
		case r >= 0xD800 && r < 0xDC00:
			if i+6 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
				if lo := hex4(raw, i+3); lo >= 0xDC00 && lo < 0xE000 {
					i += 6
					continue
				}
			}
			return badField(field, "holds a lone UTF-16 surrogate escape (\\u%04x): send valid Unicode text", r)
		case r >= 0xDC00 && r < 0xE000:
			return badField(field, "holds a lone UTF-16 surrogate escape (\\u%04x): send valid Unicode text", r)
		}
	}
	for _, r := range s {
		if r == 0 {
			return badField(field, "holds the character U+0000, which cannot be stored: remove it")
		}
	}
	return nil
}

// hex4 reads the 4 hex digits at raw[i:] (-1 when they are not there).
func hex4(raw []byte, i int) int {
	if i+4 > len(raw) {
		return -1
	}
	n, err := strconv.ParseUint(string(raw[i:i+4]), 16, 32)
	if err != nil {
		return -1
	}
	return int(n)
}

func orBody(path string) string {
	if path == "" {
		return "(body)"
	}
	return path
}

func mismatch(field string, t reflect.Type, tok json.Token) *apiError {
	return badField(field, "must be %s, not %s", expected(t), describe(tok))
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

// describe names the kind of JSON value a token starts.
func describe(tok json.Token) string {
	switch v := tok.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return fmt.Sprintf("%t", v)
	case json.Number:
		return "the number " + string(v)
	case json.Delim:
		if v == '[' {
			return "an array"
		}
		return "an object"
	}
	return "JSON"
}
