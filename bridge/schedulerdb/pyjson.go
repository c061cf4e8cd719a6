package schedulerdb

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf16"
)

// BBB wrote property values with Python's json.dumps((value, "bbb")), so the
// stored text has ", " and ": " separators and escapes every non-ASCII
// character. pythonJSON reproduces that byte for byte (keeping the key order
// of the payload) so that rows written by this bridge look like BBB's.

// propertyValue renders the buildset_properties.property_value of a payload
// property: the JSON pair [value, "bbb"].
func propertyValue(raw json.RawMessage) (string, error) {
	v, err := pythonJSON(raw)
	if err != nil {
		return "", err
	}
	return "[" + v + `, "bbb"]`, nil
}

func pythonJSON(raw []byte) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var out bytes.Buffer
	// Each open container records whether it is an object and how many
	// tokens (keys and values) it has seen, to place separators.
	type frame struct {
		object bool
		n      int
	}
	var stack []frame
	first := true
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", fmt.Errorf("not valid JSON: %w", err)
		}
		if !first && len(stack) == 0 {
			return "", errors.New("not valid JSON: more than one value")
		}
		first = false
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			out.WriteByte(byte(d))
			continue
		}
		if len(stack) > 0 {
			top := &stack[len(stack)-1]
			switch {
			case top.object && top.n%2 == 1:
				out.WriteString(": ")
			case top.n > 0:
				out.WriteString(", ")
			}
			top.n++
		}
		switch t := tok.(type) {
		case json.Delim:
			out.WriteByte(byte(t))
			stack = append(stack, frame{object: t == '{'})
		case string:
			writePythonString(&out, t)
		case json.Number:
			out.WriteString(t.String())
		case bool:
			out.WriteString(strconv.FormatBool(t))
		case nil:
			out.WriteString("null")
		}
	}
	if first {
		return "", errors.New("not valid JSON: empty")
	}
	if len(stack) > 0 {
		return "", errors.New("not valid JSON: unexpected end")
	}
	return out.String(), nil
}

// writePythonString writes s as json.dumps does with ensure_ascii=True.
func writePythonString(out *bytes.Buffer, s string) {
	out.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			out.WriteString(`\"`)
		case '\\':
			out.WriteString(`\\`)
		case '\n':
			out.WriteString(`\n`)
		case '\r':
			out.WriteString(`\r`)
		case '\t':
			out.WriteString(`\t`)
		case '\b':
			out.WriteString(`\b`)
		case '\f':
			out.WriteString(`\f`)
		default:
			switch {
			case r < 0x20 || (r > 0x7f && r < 0x10000):
				fmt.Fprintf(out, `\u%04x`, r)
			case r >= 0x10000:
				hi, lo := utf16.EncodeRune(r)
				fmt.Fprintf(out, `\u%04x\u%04x`, hi, lo)
			default:
				out.WriteRune(r)
			}
		}
	}
	out.WriteByte('"')
}
