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
		return nil, badField("(body)", "read request body: %v", err)
	}
	if len(data) > maxBody {
		return nil, badField("(body)", "request body is larger than %d bytes", maxBody)
	}
	return data, nil
}

// decodeBytes decodes a request body into v after strictCheck; every
// request decoder goes through it (or decodeFields), so every write route
// has the same rules (docs/provisioner.md, "Request bodies").
func decodeBytes(data []byte, v any) *apiError {
	_, aerr := decodeFields(data, v)
	return aerr
}

// decodeFields is decodeBytes that also says which fields the body
// carried, for validators that tell "sent as 0" from "left out".
func decodeFields(data []byte, v any) (present, *apiError) {
	if len(data) > maxBody {
		return nil, badField("(body)", "request body is larger than %d bytes", maxBody)
	}
	seen, aerr := strictCheck(data, reflect.TypeOf(v))
	if aerr != nil {
		return nil, aerr
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return nil, jsonError(err)
	}
	return seen, nil
}

// jsonError turns encoding/json's errors into answers naming the field;
// strictCheck refuses nearly everything first, so these are what a
// type's own UnmarshalJSON refuses.
func jsonError(err error) *apiError {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return badField("(body)", "malformed JSON at byte %d: %v", syn.Offset, err)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "(body)"
		}
		return badField(field, "must be %s, not JSON %s", expected(typ.Type), typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return badField("(body)", "truncated JSON: the body ends inside a value")
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		name, _ = strconv.Unquote(name)
		return badField(name, "unknown field %q: remove it or check its spelling", name)
	}
	return badField("(body)", "invalid JSON: %v", err)
}
