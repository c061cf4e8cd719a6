package devqueue

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// artifact is a stored artifact (queue_artifacts). s3 artifacts keep their
// bytes in blob once uploaded to the putUrl devqueue hands out.
type artifact struct {
	StorageType string
	Name        string
	ContentType string
	Expires     time.Time
	// Details, by storage type: URL (reference), Target (link), Reason and
	// Message (error).
	URL     string
	Target  string
	Reason  string
	Message string

	getToken string // s3: unguessable token of the download URL
	blob     *blob  // s3: uploaded content, nil until the PUT
}

// artifactJS is artifact-response.json (artifactUtils.serialize).
type artifactJS struct {
	StorageType string `json:"storageType"`
	Name        string `json:"name"`
	Expires     string `json:"expires"`
	ContentType string `json:"contentType"`
}

func (a *artifact) json() artifactJS {
	return artifactJS{StorageType: a.StorageType, Name: a.Name, Expires: formatTime(a.Expires), ContentType: a.ContentType}
}

func newToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

type createArtifactRequest struct {
	StorageType string `json:"storageType"`
	Expires     string `json:"expires"`
	ContentType string `json:"contentType"`
	URL         string `json:"url"`
	Artifact    string `json:"artifact"`
	Reason      string `json:"reason"`
	Message     string `json:"message"`
}

// s3Response is the s3 branch of post-artifact-response.json.
type s3Response struct {
	StorageType string `json:"storageType"`
	PutURL      string `json:"putUrl"`
	Expires     string `json:"expires"`
	ContentType string `json:"contentType"`
}

type storageTypeResponse struct {
	StorageType string `json:"storageType"`
}

// compatible applies artifacts.js createArtifactCallsCompatible.
func compatible(orig, next *artifact) bool {
	if next.StorageType != "link" && orig.ContentType != next.ContentType {
		return false
	}
	if orig.Expires.After(next.Expires) {
		return false
	}
	if orig.StorageType == next.StorageType {
		same := orig.URL == next.URL && orig.Target == next.Target && orig.Reason == next.Reason && orig.Message == next.Message
		return same || next.StorageType == "reference"
	}
	return orig.StorageType == "reference" && next.StorageType == "link"
}

func (s *Server) createArtifact(c *call) (any, *apiError) {
	var req createArtifactRequest
	if aerr := c.decode(&req); aerr != nil {
		return nil, aerr
	}
	if req.StorageType == "object" {
		return nil, errorf("InputError", "devqueue does not serve the object service; create the artifact with storageType \"s3\" instead of \"object\"")
	}
	contentType := req.ContentType
	if contentType == "" {
		contentType = "application/binary"
	}
	expires, aerr := parseTime("expires", req.Expires)
	if aerr != nil {
		return nil, aerr
	}
	now := s.now()
	if expires.Before(now.Add(-15 * time.Minute)) {
		return nil, errorf("InputError", "Expires must be in the future (got %s); set expires to a future time no later than the task's expires", req.Expires)
	}
	name := c.params["name"]
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tasks[c.params["taskId"]]
	if !ok {
		return nil, errorf("InputError", "Task not found")
	}
	runID, _ := strconv.Atoi(c.params["runId"])
	if runID >= len(t.Runs) {
		return nil, errorf("InputError", "Run not found")
	}
	r := t.Runs[runID]
	if r.WorkerGroup == "" || r.WorkerID == "" {
		return nil, errorf("InputError", "Run was not claimed by a worker and so no artifacts can exist")
	}
	if expires.After(t.Expires) {
		return nil, errorf("InputError", "Artifact expires (%s) after the task expiration %s (task.expires < expires) - this is not allowed, artifacts may not expire after the task they belong to expires", formatTime(expires), formatTime(t.Expires))
	}
	if r.State != "running" && !(r.State == "exception" && r.Resolved.After(now.Add(-25*time.Minute))) {
		return nil, errorf("RequestConflict", "Artifacts cannot be created for a task after it is resolved, unless it is resolved 'exception', and even in this case only up to 25 min past resolution.This to ensure that artifacts have been uploaded before a task is 'completed' and output is consumed by a dependent task\n\nTask status: state %s of run %d", r.State, runID)
	}
	next := &artifact{StorageType: req.StorageType, Name: name, ContentType: contentType, Expires: expires}
	switch req.StorageType {
	case "reference":
		next.URL = req.URL
	case "link":
		next.Target = req.Artifact
	case "error":
		next.Reason, next.Message = req.Reason, req.Message
	}
	runArts := t.Artifacts[runID]
	if runArts == nil {
		runArts = map[string]*artifact{}
		t.Artifacts[runID] = runArts
	}
	a := runArts[name]
	if a == nil {
		a = next
		if a.StorageType == "s3" {
			a.getToken = newToken()
			s.blobs[a.getToken] = &blobRef{art: a}
		}
		runArts[name] = a
	} else {
		if !compatible(a, next) {
			return nil, errorf("RequestConflict", "Artifact already exists with different properties, and none of the allowed exceptions apply: storageType %s, contentType %s, expires %s", a.StorageType, a.ContentType, formatTime(a.Expires))
		}
		// update_queue_artifact_2 keeps the original contentType.
		a.StorageType, a.Expires = next.StorageType, next.Expires
		a.URL, a.Target, a.Reason, a.Message = next.URL, next.Target, next.Reason, next.Message
	}
	if a.StorageType != "s3" {
		js := a.json()
		s.publish("artifact-created", t, publishOpts{runID: runID, workerGroup: r.WorkerGroup, workerID: r.WorkerID, artifact: &js})
		return storageTypeResponse{StorageType: a.StorageType}, nil
	}
	put := newToken()
	s.blobs[put] = &blobRef{art: a, put: true, expires: now.Add(45*time.Minute + 10*time.Second)}
	return s3Response{
		StorageType: "s3",
		PutURL:      s.rootURL + blobPrefix + put,
		Expires:     formatTime(now.Add(45 * time.Minute)),
		ContentType: a.ContentType,
	}, nil
}

func (s *Server) finishArtifact(c *call) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tasks[c.params["taskId"]]
	runID, _ := strconv.Atoi(c.params["runId"])
	if !ok || runID >= len(t.Runs) || t.Artifacts[runID][c.params["name"]] == nil {
		return nil, errorf("ResourceNotFound", "Artifact with taskId `%s`, runId %d, name `%s` not found", c.params["taskId"], runID, c.params["name"])
	}
	return nil, errorf("InputError", "Only object artifacts can be finished")
}

// latestRunID resolves the run of a "latest" endpoint.
func (s *Server) runForCall(c *call, t *task) (int, *apiError) {
	if v, ok := c.params["runId"]; ok {
		n, _ := strconv.Atoi(v)
		return n, nil
	}
	if t == nil {
		return 0, errorf("ResourceNotFound", "Task not found")
	}
	if len(t.Runs) == 0 {
		return 0, errorf("ResourceNotFound", "Task doesn't have any runs")
	}
	return len(t.Runs) - 1, nil
}

// followLinks returns the artifact that name resolves to, authenticating
// the caller when a link leads to a non-public name. Call it under s.mu.
func (s *Server) followLinks(c *call, t *task, runID int, name string) (*artifact, *apiError) {
	var seen []string
	for {
		seen = append(seen, name)
		if c.id == nil && !strings.HasPrefix(name, "public/") {
			id, aerr := s.authn(c.r)
			if aerr != nil {
				return nil, aerr
			}
			if id == nil {
				return nil, &apiError{Code: "AuthenticationFailed", Message: "Artifact `" + name + "` is not public; this request requires Taskcluster credentials"}
			}
			c.id = id
		}
		if scope := "queue:get-artifact:" + name; !strings.HasPrefix(name, "public/") && !c.id.hasScopes(scope) {
			return nil, &apiError{Code: "InsufficientScopes", Message: "Client ID " + c.id.ClientID + " does not have sufficient scopes and is missing the following scopes:\n\n```\n" + scope + "\n```"}
		}
		var a *artifact
		if t != nil {
			a = t.Artifacts[runID][name]
		}
		if a == nil {
			return nil, errorf("ResourceNotFound", "Artifact not found")
		}
		if a.StorageType != "link" {
			return a, nil
		}
		for _, n := range seen {
			if n == a.Target {
				return nil, errorf("InputError", "Artifact leads to a link cycle")
			}
		}
		name = a.Target
	}
}

// getArtifactResponse is get-artifact-response.json.
type getArtifactResponse struct {
	StorageType string `json:"storageType"`
	URL         string `json:"url"`
}

type errorArtifactBody struct {
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

func (s *Server) getArtifact(c *call) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tasks[c.params["taskId"]]
	runID, aerr := s.runForCall(c, t)
	if aerr != nil {
		return nil, aerr
	}
	a, aerr := s.followLinks(c, t, runID, c.params["name"])
	if aerr != nil {
		return nil, aerr
	}
	c.w.Header().Set("X-Taskcluster-Artifact-Storage-Type", a.StorageType)
	switch a.StorageType {
	case "s3":
		u := s.rootURL + blobPrefix + a.getToken
		return redirectReply{url: u, body: getArtifactResponse{StorageType: "s3", URL: u}}, nil
	case "reference":
		return redirectReply{url: a.URL, body: getArtifactResponse{StorageType: "reference", URL: a.URL}}, nil
	default: // error
		return statusReply{status: http.StatusFailedDependency, body: errorArtifactBody{Reason: a.Reason, Message: a.Message}}, nil
	}
}

// artifactContentResponse is artifact-content-response.json.
type artifactContentResponse struct {
	StorageType string `json:"storageType"`
	URL         string `json:"url,omitempty"`
	Reason      string `json:"reason,omitempty"`
	Message     string `json:"message,omitempty"`
}

func (s *Server) artifactContent(c *call) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tasks[c.params["taskId"]]
	runID, aerr := s.runForCall(c, t)
	if aerr != nil {
		return nil, aerr
	}
	a, aerr := s.followLinks(c, t, runID, c.params["name"])
	if aerr != nil {
		return nil, aerr
	}
	switch a.StorageType {
	case "s3":
		return artifactContentResponse{StorageType: "s3", URL: s.rootURL + blobPrefix + a.getToken}, nil
	case "reference":
		return artifactContentResponse{StorageType: "reference", URL: a.URL}, nil
	default:
		return artifactContentResponse{StorageType: "error", Reason: a.Reason, Message: a.Message}, nil
	}
}

func (s *Server) artifactInfo(c *call) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tasks[c.params["taskId"]]
	runID, aerr := s.runForCall(c, t)
	if aerr != nil {
		return nil, aerr
	}
	if t == nil || t.Artifacts[runID][c.params["name"]] == nil {
		return nil, errorf("ResourceNotFound", "Artifact not found")
	}
	return t.Artifacts[runID][c.params["name"]].json(), nil
}

type listArtifactsResponse struct {
	Artifacts         []artifactJS `json:"artifacts"`
	ContinuationToken string       `json:"continuationToken,omitempty"`
}

func (s *Server) listArtifacts(c *call) (any, *apiError) {
	offset, limit, aerr := c.paging(1000, 1000)
	if aerr != nil {
		return nil, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tasks[c.params["taskId"]]
	if t == nil {
		return nil, errorf("ResourceNotFound", "Task not found")
	}
	if len(t.Runs) == 0 {
		return nil, errorf("ResourceNotFound", "Task doesn't have any runs")
	}
	runID, _ := s.runForCall(c, t)
	if runID > len(t.Runs)-1 {
		return nil, errorf("ResourceNotFound", "Task with taskId: `%s` has no run with runId: %d", t.ID, runID)
	}
	names := make([]string, 0, len(t.Artifacts[runID]))
	for n := range t.Artifacts[runID] {
		names = append(names, n)
	}
	sort.Strings(names)
	res := listArtifactsResponse{Artifacts: []artifactJS{}}
	offset = min(offset, len(names))
	end := min(offset+limit, len(names))
	for _, n := range names[offset:end] {
		res.Artifacts = append(res.Artifacts, t.Artifacts[runID][n].json())
	}
	if end < len(names) {
		res.ContinuationToken = strconv.Itoa(end)
	}
	return res, nil
}
