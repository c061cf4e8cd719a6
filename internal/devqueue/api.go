package devqueue

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

const apiPrefix = "/api/queue/v1/"

// authMode says whether an endpoint needs a Hawk signature: the real queue
// authenticates exactly the endpoints that declare scopes.
type authMode int

const (
	authNone          authMode = iota // no scopes in the real queue
	authRequired                      // scoped endpoint
	authUnlessPublic                  // artifact reads: anonymous for public/ names
	authListArtifacts                 // scoped, but anonymous allowed (see doc.go)
)

// endpoint is one API method.
type endpoint struct {
	method  string // HTTP method
	path    []string
	name    string // API method name, as in the error trailer
	input   string // request schema file, "" for none
	output  string // response schema file, "" for none
	auth    authMode
	handler func(*call) (any, *apiError)
}

// call is one API request being served.
type call struct {
	s      *Server
	w      http.ResponseWriter
	r      *http.Request
	ep     *endpoint
	params map[string]string
	body   []byte
	id     *identity
}

// redirectReply makes the handler answer 303 with Location and a JSON body.
type redirectReply struct {
	url  string
	body any
}

// statusReply answers with an explicit status and JSON body (no schema).
type statusReply struct {
	status int
	body   any
}

var paramPatterns = map[string]*regexp.Regexp{
	"taskId":        regexp.MustCompile(`^[A-Za-z0-9_-]{8}[Q-T][A-Za-z0-9_-][CGKOSWaeimquy26-][A-Za-z0-9_-]{10}[AQgw]$`),
	"taskGroupId":   regexp.MustCompile(`^[A-Za-z0-9_-]{8}[Q-T][A-Za-z0-9_-][CGKOSWaeimquy26-][A-Za-z0-9_-]{10}[AQgw]$`),
	"taskQueueId":   regexp.MustCompile(`^[A-Za-z0-9_-]{1,38}/[A-Za-z0-9_-]{1,38}$`),
	"provisionerId": regexp.MustCompile(`^[a-zA-Z0-9-_]{1,38}$`),
	"workerType":    regexp.MustCompile(`^[a-zA-Z0-9-_]{1,38}$`),
	"workerGroup":   regexp.MustCompile(`^[a-zA-Z0-9-_]{1,38}$`),
	"workerId":      regexp.MustCompile(`^[a-zA-Z0-9-_]{1,38}$`),
	"runId":         regexp.MustCompile(`^[1-9]*[0-9]+$`),
	"name":          regexp.MustCompile(`^[\x20-\x7e]+$`),
}

// paramRegexpText is how the real queue prints each pattern in its 400.
var paramRegexpText = map[string]string{
	"taskId":        `/^[A-Za-z0-9_-]{8}[Q-T][A-Za-z0-9_-][CGKOSWaeimquy26-][A-Za-z0-9_-]{10}[AQgw]$/`,
	"taskGroupId":   `/^[A-Za-z0-9_-]{8}[Q-T][A-Za-z0-9_-][CGKOSWaeimquy26-][A-Za-z0-9_-]{10}[AQgw]$/`,
	"taskQueueId":   `/^[A-Za-z0-9_-]{1,38}\/[A-Za-z0-9_-]{1,38}$/`,
	"provisionerId": `/^[a-zA-Z0-9-_]{1,38}$/`,
	"workerType":    `/^[a-zA-Z0-9-_]{1,38}$/`,
	"workerGroup":   `/^[a-zA-Z0-9-_]{1,38}$/`,
	"workerId":      `/^[a-zA-Z0-9-_]{1,38}$/`,
	"runId":         `/^[1-9]*[0-9]+$/`,
	"name":          `/^[\x20-\x7e]+$/`,
}

func (s *Server) endpoints() []*endpoint {
	p := func(path string) []string { return strings.Split(path, "/") }
	return []*endpoint{
		{"GET", p("ping"), "ping", "", "", authNone, s.ping},
		{"GET", p("task/:taskId"), "task", "", "task.yml", authNone, s.getTask},
		{"GET", p("task/:taskId/status"), "status", "", "task-status-response.yml", authNone, s.getStatus},
		{"PUT", p("task/:taskId"), "createTask", "create-task-request.yml", "task-status-response.yml", authRequired, s.createTask},
		{"POST", p("task/:taskId/schedule"), "scheduleTask", "", "task-status-response.yml", authRequired, s.scheduleTask},
		{"POST", p("task/:taskId/rerun"), "rerunTask", "", "task-status-response.yml", authRequired, s.rerunTask},
		{"POST", p("task/:taskId/cancel"), "cancelTask", "", "task-status-response.yml", authRequired, s.cancelTask},
		{"POST", p("claim-work/*taskQueueId"), "claimWork", "claim-work-request.yml", "claim-work-response.yml", authRequired, s.claimWork},
		{"POST", p("task/:taskId/runs/:runId/claim"), "claimTask", "task-claim-request.yml", "task-claim-response.yml", authRequired, s.claimTask},
		{"POST", p("task/:taskId/runs/:runId/reclaim"), "reclaimTask", "", "task-reclaim-response.yml", authRequired, s.reclaimTask},
		{"POST", p("task/:taskId/runs/:runId/completed"), "reportCompleted", "", "task-status-response.yml", authRequired, s.reportCompleted},
		{"POST", p("task/:taskId/runs/:runId/failed"), "reportFailed", "", "task-status-response.yml", authRequired, s.reportFailed},
		{"POST", p("task/:taskId/runs/:runId/exception"), "reportException", "task-exception-request.yml", "task-status-response.yml", authRequired, s.reportException},
		{"POST", p("task/:taskId/runs/:runId/artifacts/*name"), "createArtifact", "post-artifact-request.yml", "post-artifact-response.yml", authRequired, s.createArtifact},
		{"PUT", p("task/:taskId/runs/:runId/artifacts/*name"), "finishArtifact", "finish-artifact-request.yml", "", authRequired, s.finishArtifact},
		{"GET", p("task/:taskId/runs/:runId/artifacts/*name"), "getArtifact", "", "get-artifact-response.yml", authUnlessPublic, s.getArtifact},
		{"GET", p("task/:taskId/artifacts/*name"), "getLatestArtifact", "", "get-artifact-response.yml", authUnlessPublic, s.getArtifact},
		{"GET", p("task/:taskId/runs/:runId/artifacts"), "listArtifacts", "", "list-artifacts-response.yml", authListArtifacts, s.listArtifacts},
		{"GET", p("task/:taskId/artifacts"), "listLatestArtifacts", "", "list-artifacts-response.yml", authListArtifacts, s.listArtifacts},
		{"GET", p("task/:taskId/runs/:runId/artifact-info/*name"), "artifactInfo", "", "artifact-response.yml", authListArtifacts, s.artifactInfo},
		{"GET", p("task/:taskId/artifact-info/*name"), "latestArtifactInfo", "", "artifact-response.yml", authListArtifacts, s.artifactInfo},
		{"GET", p("task/:taskId/runs/:runId/artifact-content/*name"), "artifact", "", "artifact-content-response.yml", authUnlessPublic, s.artifactContent},
		{"GET", p("task/:taskId/artifact-content/*name"), "latestArtifact", "", "artifact-content-response.yml", authUnlessPublic, s.artifactContent},
		{"GET", p("task-queues"), "listTaskQueues", "", "list-taskqueues-response.yml", authRequired, s.listTaskQueues},
		{"GET", p("task-queues/:taskQueueId"), "getTaskQueue", "", "taskqueue-response.yml", authRequired, s.getTaskQueue},
		{"GET", p("pending/*taskQueueId"), "pendingTasks", "", "pending-tasks-response.yml", authRequired, s.pendingTasks},
		{"GET", p("provisioners/:provisionerId/worker-types/:workerType/workers"), "listWorkers", "", "list-workers-response.yml", authRequired, s.listWorkers},
		{"GET", p("provisioners/:provisionerId/worker-types/:workerType/workers/:workerGroup/:workerId"), "getWorker", "", "worker-response.yml", authRequired, s.getWorker},
		{"PUT", p("provisioners/:provisionerId/worker-types/:workerType/workers/:workerGroup/:workerId"), "quarantineWorker", "quarantine-worker-request.yml", "worker-response.yml", authRequired, s.quarantineWorker},
		{"PUT", p("provisioners/:provisionerId/worker-types/:workerType/:workerGroup/:workerId"), "declareWorker", "update-worker-request.yml", "worker-response.yml", authRequired, s.declareWorker},
	}
}

// match returns the path parameters when segs fits the pattern. Segments
// are still escaped: client-go url.QueryEscapes each parameter, so a
// taskQueueId arrives as `prov%2Fwt` and must be unescaped per segment.
func match(pattern, segs []string) (map[string]string, bool) {
	params := map[string]string{}
	for i, p := range pattern {
		if strings.HasPrefix(p, "*") {
			if i >= len(segs) {
				return nil, false
			}
			var parts []string
			for _, s := range segs[i:] {
				u, err := url.PathUnescape(s)
				if err != nil {
					return nil, false
				}
				parts = append(parts, u)
			}
			params[p[1:]] = strings.Join(parts, "/")
			return params, true
		}
		if i >= len(segs) {
			return nil, false
		}
		if strings.HasPrefix(p, ":") {
			// Express decodes with decodeURIComponent, which (unlike
			// QueryUnescape) leaves '+' alone.
			u, err := url.PathUnescape(segs[i])
			if err != nil {
				return nil, false
			}
			params[p[1:]] = u
			continue
		}
		if p != segs[i] {
			return nil, false
		}
	}
	return params, len(pattern) == len(segs)
}

// ServeHTTP-like entry for the API.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request, eps []*endpoint) {
	rest := strings.TrimPrefix(r.URL.EscapedPath(), apiPrefix)
	segs := strings.Split(rest, "/")
	var methodMismatch bool
	for _, ep := range eps {
		params, ok := match(ep.path, segs)
		if !ok {
			continue
		}
		if ep.method != r.Method && !(ep.method == "GET" && r.Method == "HEAD") {
			methodMismatch = true
			continue
		}
		c := &call{s: s, w: w, r: r, ep: ep, params: params}
		s.serveCall(c)
		return
	}
	msg := "The requested resource does not exist"
	if methodMismatch {
		msg = "Method " + r.Method + " is not supported for this resource"
	}
	writeError(w, s.now(), "", nil, nil, &apiError{Code: "ResourceNotFound", Message: msg})
}

func (s *Server) serveCall(c *call) {
	// Parameters first, as the real queue's parameter middleware does.
	var bad []string
	for name, val := range c.params {
		if re, ok := paramPatterns[name]; ok && !re.MatchString(val) {
			bad = append(bad, "URL parameter '"+name+"' given as '"+val+"' must match regular expression: '"+paramRegexpText[name]+"'")
		}
	}
	if len(bad) > 0 {
		c.fail(&apiError{Code: "InvalidRequestArguments", Message: "Invalid URL patterns:\n" + strings.Join(bad, "\n")})
		return
	}
	body, err := io.ReadAll(io.LimitReader(c.r.Body, 10<<20+1))
	if err != nil {
		c.fail(errorf("MalformedPayload", "could not read the request body: %v", err))
		return
	}
	if len(body) > 10<<20 {
		c.fail(errorf("InputTooLarge", "request body is larger than 10 MiB; send a smaller body"))
		return
	}
	c.body = body
	// The verifier re-reads the body when the client signed its hash.
	c.r.Body = io.NopCloser(bytes.NewReader(body))
	if c.needsAuth() {
		id, aerr := s.authn(c.r)
		if aerr != nil {
			c.fail(aerr)
			return
		}
		if id == nil {
			c.fail(&apiError{Code: "AuthenticationFailed", Message: "This request requires Taskcluster credentials (a Hawk signature); none were given. Create the client with credentials, e.g. tcqueue.New(&tcclient.Credentials{ClientID: ..., AccessToken: ...}, rootURL)."})
			return
		}
		c.id = id
	}
	if c.ep.input != "" {
		ct, _, _ := mime.ParseMediaType(c.r.Header.Get("Content-Type"))
		if ct != "application/json" {
			c.fail(errorf("MalformedPayload", "Payload must be JSON with content-type: application/json got content-type: %q", c.r.Header.Get("Content-Type")))
			return
		}
		if msg := s.schemas.validate(c.ep.input, body); msg != "" {
			c.fail(&apiError{Code: "InputValidationError", Message: msg})
			return
		}
	}
	reply, aerr := c.ep.handler(c)
	if aerr != nil {
		c.fail(aerr)
		return
	}
	c.reply(reply)
}

// needsAuth reports whether the endpoint checks a signature for this request.
func (c *call) needsAuth() bool {
	switch c.ep.auth {
	case authRequired:
		return true
	case authUnlessPublic:
		return !strings.HasPrefix(c.params["name"], "public/")
	default:
		return false
	}
}

func (c *call) fail(e *apiError) {
	if e.Code == "InternalServerError" {
		c.s.log.Error("devqueue: internal error", "method", c.ep.name, "error", e.Message)
	}
	writeError(c.w, c.s.now(), c.ep.name, c.params, c.body, e)
}

func (c *call) reply(v any) {
	status := http.StatusOK
	switch t := v.(type) {
	case statusReply:
		writeJSON(c.w, t.status, t.body)
		return
	case redirectReply:
		c.w.Header().Set("Location", t.url)
		status = http.StatusSeeOther
		v = t.body
	}
	if v == nil {
		c.w.WriteHeader(http.StatusNoContent)
		return
	}
	body, err := json.Marshal(v)
	if err != nil {
		c.fail(errorf("InternalServerError", "encode response: %v", err))
		return
	}
	if c.s.checkOutput && c.ep.output != "" {
		if msg := c.s.schemas.validate(c.ep.output, body); msg != "" {
			c.fail(errorf("InternalServerError", "Output schema validation error: %s", msg))
			return
		}
	}
	c.w.Header().Set("Content-Type", "application/json; charset=utf-8")
	c.w.WriteHeader(status)
	_, _ = c.w.Write(body)
}

// decode unmarshals the (already schema-validated) body.
func (c *call) decode(v any) *apiError {
	if len(c.body) == 0 {
		return nil
	}
	if err := json.Unmarshal(c.body, v); err != nil {
		return errorf("InputError", "request body does not decode: %v", err)
	}
	return nil
}

// paging reads limit and continuationToken; tokens are offsets, as in
// lib-api's paginateResults.
func (c *call) paging(defLimit, maxLimit int) (offset, limit int, aerr *apiError) {
	q := c.r.URL.Query()
	limit = defLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return 0, 0, errorf("InvalidRequestArguments", "query parameter limit=%q must be a positive integer", v)
		}
		limit = min(n, maxLimit)
	}
	if v := q.Get("continuationToken"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, 0, errorf("InvalidRequestArguments", "continuationToken %q is not one devqueue issued; pass the token from the previous page", v)
		}
		offset = n
	}
	return offset, limit, nil
}
