package provisioner

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/labrunner/labrunner/provisioner/client"
)

// maxBody bounds request bodies; the largest legitimate one is a pool with
// its worker config.
const maxBody = 1 << 20

// apiError is an error answer: status, code, and the field at fault.
type apiError struct {
	status int
	code   string
	field  string
	msg    string
}

func (e *apiError) Error() string {
	if e.field != "" {
		return e.field + ": " + e.msg
	}
	return e.msg
}

func badField(field, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: "InvalidRequest", field: field, msg: fmt.Sprintf(format, args...)}
}

func errStatus(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

// writeJSON sends v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, err *apiError) {
	writeJSON(w, err.status, client.Error{Code: err.code, Message: err.Error(), Field: err.field})
}

// readBody reads a request body up to maxBody.
func readBody(body io.Reader) ([]byte, *apiError) {
	data, err := io.ReadAll(io.LimitReader(body, maxBody+1))
	if err != nil {
		return nil, badField("", "read request body: %v", err)
	}
	if len(data) > maxBody {
		return nil, badField("", "request body is larger than %d bytes", maxBody)
	}
	return data, nil
}

func decodeBytes(data []byte, v any) *apiError {
	if len(data) > maxBody {
		return badField("", "request body is larger than %d bytes", maxBody)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return badField("", "request body is empty: send a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		aerr := jsonError(err)
		if strings.HasPrefix(aerr.msg, "unknown field") {
			if p := unknownFieldPath(data, reflect.TypeOf(v)); p != "" {
				aerr.field = p
			}
		}
		return aerr
	}
	if dec.More() {
		return badField("", "unexpected data after the JSON object: send exactly one object")
	}
	return nil
}

// jsonError turns encoding/json's errors into answers naming the field.
func jsonError(err error) *apiError {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return badField("", "malformed JSON at byte %d: %v", syn.Offset, err)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "(body)"
		}
		return badField(field, "must be %s, not JSON %s", typeName(typ.Type.String()), typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return badField("", "truncated JSON: the body ends inside a value")
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		name, _ = strconv.Unquote(name)
		return badField(name, "unknown field %q: remove it or check its spelling", name)
	}
	return badField("", "invalid JSON: %v", err)
}

func typeName(t string) string {
	switch {
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"):
		return "an integer"
	case strings.HasPrefix(t, "float"):
		return "a number"
	case t == "string":
		return "a string"
	case t == "bool":
		return "true or false"
	case strings.HasPrefix(t, "[]"):
		return "an array"
	case strings.HasPrefix(t, "map["):
		return "an object"
	case t == "time.Time":
		return "an RFC 3339 date-time string"
	}
	return "an object"
}
