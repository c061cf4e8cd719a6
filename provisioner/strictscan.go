package provisioner

import (
	"encoding/json"
	"unicode/utf8"
)

// jsonScanner reads JSON values from a byte slice for strictCheck. It
// checks what encoding/json's decoder lets pass (invalid UTF-8, lone
// surrogate escapes) and, unlike json.Decoder.Token, allocates nothing
// per token: the walker looks at raw spans and decodes only the keys
// that hold escapes.
type jsonScanner struct {
	data []byte
	pos  int
}

// scanError is a problem at a byte offset; the walker adds the field.
type scanError struct {
	offset int
	msg    string
}

func (s *jsonScanner) fail(msg string) *scanError { return &scanError{offset: s.pos, msg: msg} }

// syntax is a malformed-JSON problem at the current byte.
func (s *jsonScanner) syntax(msg string) *scanError {
	if s.pos >= len(s.data) {
		return &scanError{offset: s.pos, msg: "truncated JSON: the body ends inside a value"}
	}
	return &scanError{offset: s.pos, msg: "malformed JSON: " + msg}
}

func (s *jsonScanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// more says whether anything but spaces is left.
func (s *jsonScanner) more() bool {
	s.skipSpace()
	return s.pos < len(s.data)
}

// peek returns the next non-space byte, or 0 at the end.
func (s *jsonScanner) peek() byte {
	s.skipSpace()
	if s.pos >= len(s.data) {
		return 0
	}
	return s.data[s.pos]
}

// expect consumes byte c after spaces.
func (s *jsonScanner) expect(c byte, what string) *scanError {
	if s.peek() != c {
		return s.syntax("expected " + what)
	}
	s.pos++
	return nil
}

// str reads a string at s.pos (which holds '"') and returns its raw form
// with the quotes and whether it holds escapes.
func (s *jsonScanner) str() (raw []byte, escaped bool, err *scanError) {
	start := s.pos
	s.pos++
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch {
		case c == '"':
			s.pos++
			return s.data[start:s.pos], escaped, nil
		case c == '\\':
			escaped = true
			if err := s.escape(); err != nil {
				return nil, false, err
			}
		case c < 0x20:
			return nil, false, s.syntax("control character in a string: escape it")
		case c < utf8.RuneSelf:
			s.pos++
		default:
			r, size := utf8.DecodeRune(s.data[s.pos:])
			if r == utf8.RuneError && size <= 1 {
				return nil, false, s.fail("is not valid UTF-8: send text in UTF-8")
			}
			s.pos += size
		}
	}
	return nil, false, s.syntax("the string does not end")
}

// escape reads one escape sequence at s.pos (which holds '\').
func (s *jsonScanner) escape() *scanError {
	if s.pos+1 >= len(s.data) {
		s.pos = len(s.data)
		return s.syntax("the string does not end")
	}
	switch s.data[s.pos+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		s.pos += 2
		return nil
	case 'u':
	default:
		return s.syntax("invalid escape in a string")
	}
	r := hex4(s.data, s.pos+2)
	switch {
	case r < 0:
		return s.syntax("invalid \\u escape in a string: it takes 4 hex digits")
	case r == 0:
		return s.fail("holds the character U+0000, which cannot be stored: remove it")
	case r >= 0xDC00 && r < 0xE000:
		return s.fail("holds a lone UTF-16 surrogate escape: send valid Unicode text")
	case r >= 0xD800 && r < 0xDC00:
		next := s.pos + 6
		if next+1 < len(s.data) && s.data[next] == '\\' && s.data[next+1] == 'u' {
			if lo := hex4(s.data, next+2); lo >= 0xDC00 && lo < 0xE000 {
				s.pos = next + 6
				return nil
			}
		}
		return s.fail("holds a lone UTF-16 surrogate escape: send valid Unicode text")
	}
	s.pos += 6
	return nil
}

// hex4 reads the 4 hex digits at raw[i:] (-1 when they are not there).
func hex4(raw []byte, i int) int {
	if i < 0 || i+4 > len(raw) {
		return -1
	}
	n := 0
	for _, c := range raw[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			n = n<<4 | int(c-'0')
		case c >= 'a' && c <= 'f':
			n = n<<4 | int(c-'a'+10)
		case c >= 'A' && c <= 'F':
			n = n<<4 | int(c-'A'+10)
		default:
			return -1
		}
	}
	return n
}

// number reads a number at s.pos by JSON's grammar and returns its text.
func (s *jsonScanner) number() ([]byte, *scanError) {
	start := s.pos
	digits := func() int {
		n := 0
		for s.pos < len(s.data) && s.data[s.pos] >= '0' && s.data[s.pos] <= '9' {
			s.pos++
			n++
		}
		return n
	}
	if s.data[s.pos] == '-' {
		s.pos++
	}
	switch {
	case s.pos < len(s.data) && s.data[s.pos] == '0':
		s.pos++
	case digits() == 0:
		return nil, s.syntax("a number needs digits")
	}
	if s.pos < len(s.data) && s.data[s.pos] == '.' {
		s.pos++
		if digits() == 0 {
			return nil, s.syntax("digits must follow a number's '.'")
		}
	}
	if s.pos < len(s.data) && (s.data[s.pos] == 'e' || s.data[s.pos] == 'E') {
		s.pos++
		if s.pos < len(s.data) && (s.data[s.pos] == '+' || s.data[s.pos] == '-') {
			s.pos++
		}
		if digits() == 0 {
			return nil, s.syntax("digits must follow a number's exponent")
		}
	}
	return s.data[start:s.pos], nil
}

// literal reads true, false or null.
func (s *jsonScanner) literal(word string) *scanError {
	if len(s.data)-s.pos < len(word) || string(s.data[s.pos:s.pos+len(word)]) != word {
		return s.syntax("expected " + word)
	}
	s.pos += len(word)
	return nil
}

// decodeKey returns a member name from its raw form.
func decodeKey(raw []byte, escaped bool) string {
	if !escaped {
		return string(raw[1 : len(raw)-1])
	}
	var k string
	_ = json.Unmarshal(raw, &k) // the scanner checked the syntax
	return k
}
