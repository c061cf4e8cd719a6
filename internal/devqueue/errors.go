package devqueue

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// errorStatus maps Taskcluster error codes to HTTP statuses, as
// libraries/api/src/middleware/errors.js does.
var errorStatus = map[string]int{
	"MalformedPayload":        400,
	"InvalidRequestArguments": 400,
	"InputValidationError":    400,
	"InputError":              400,
	"AuthenticationFailed":    401,
	"InsufficientScopes":      403,
	"ResourceNotFound":        404,
	"RequestConflict":         409,
	"ResourceExpired":         410,
	"InputTooLarge":           413,
	"InternalServerError":     500,
}

// apiError is a Taskcluster API error reply.
type apiError struct {
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func errorf(code, format string, args ...any) *apiError {
	return &apiError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// requestInfo is the `requestInfo` member of Taskcluster's error body.
type requestInfo struct {
	Method  string            `json:"method"`
	Params  map[string]string `json:"params"`
	Payload any               `json:"payload"`
	Time    string            `json:"time"`
}

type errorBody struct {
	Code        string      `json:"code"`
	Message     string      `json:"message"`
	RequestInfo requestInfo `json:"requestInfo"`
}

// writeError replies with Taskcluster's error shape (express-error.js): the
// message is followed by the same "---" trailer naming method, code and time.
func writeError(w http.ResponseWriter, now time.Time, method string, params map[string]string, payload []byte, e *apiError) {
	status, ok := errorStatus[e.Code]
	if !ok {
		status = 500
	}
	if params == nil {
		params = map[string]string{}
	}
	var p any = map[string]any{}
	if len(payload) > 0 && json.Valid(payload) {
		p = json.RawMessage(payload)
	}
	ts := formatTime(now)
	msg := strings.Join([]string{
		e.Message,
		"\n---\n",
		"* method:     " + method,
		"* errorCode:  " + e.Code,
		fmt.Sprintf("* statusCode: %d", status),
		"* time:       " + ts,
	}, "\n")
	if e.Code == "AuthenticationFailed" {
		w.Header().Set("WWW-Authenticate", "hawk")
	}
	writeJSON(w, status, errorBody{
		Code:        e.Code,
		Message:     msg,
		RequestInfo: requestInfo{Method: method, Params: params, Payload: p, Time: ts},
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "devqueue: encode response: "+err.Error(), 500)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// formatTime renders a time as JavaScript's Date.toJSON does, which is what
// every date in the queue's API uses.
func formatTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}
