package devpurgecache

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/labrunner/labrunner/internal/hawkauth"
)

const prefix = "/api/purge-cache/v1/"

var (
	workerPoolID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,38}/[A-Za-z0-9_-]{1,38}$`)
	// requestLifetime is how long a request stays open, as purge_cache_wpid
	// is called with taskcluster.fromNow('1 day').
	requestLifetime = 24 * time.Hour
)

// Config configures a Server.
type Config struct {
	// Clients returns a permanent client's accessToken (the dev queue's
	// clients, so that the same credentials and the temporary credentials
	// they issue work here).
	Clients func(clientID string) (accessToken string, ok bool)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives the service's logs; nil means slog.Default().
	Logger *slog.Logger
}

// Server is an in-memory purge-cache service.
type Server struct {
	verifier *hawkauth.Verifier
	now      func() time.Time
	log      *slog.Logger

	mu       sync.Mutex
	requests map[key]request
}

type key struct{ workerPoolID, cacheName string }

type request struct {
	before, expires time.Time
}

// New returns a Server.
func New(cfg Config) *Server {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Server{
		verifier: &hawkauth.Verifier{Clients: cfg.Clients, Now: cfg.Now},
		now:      cfg.Now,
		log:      cfg.Logger,
		requests: map[key]request{},
	}
}

// entry is one purge-cache-requests.json item.
type entry struct {
	ProvisionerID string `json:"provisionerId"`
	WorkerType    string `json:"workerType"`
	CacheName     string `json:"cacheName"`
	Before        string `json:"before"`
}

// Handler serves the API under /api/purge-cache/v1/.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest := strings.TrimPrefix(r.URL.EscapedPath(), prefix)
		switch {
		case rest == "ping" && r.Method == http.MethodGet:
			writeJSON(w, http.StatusOK, map[string]any{"alive": true, "uptime": 0})
		case rest == "purge-cache/list" && r.Method == http.MethodGet:
			s.allPurgeRequests(w, r)
		case strings.HasPrefix(rest, "purge-cache/"):
			wp, err := url.PathUnescape(strings.TrimPrefix(rest, "purge-cache/"))
			if err != nil || !workerPoolID.MatchString(wp) {
				s.fail(w, "", http.StatusBadRequest, "InvalidRequestArguments",
					fmt.Sprintf("URL parameter 'workerPoolId' given as %q must match regular expression: '/^[A-Za-z0-9_-]{1,38}\\/[A-Za-z0-9_-]{1,38}$/'", strings.TrimPrefix(rest, "purge-cache/")))
				return
			}
			switch r.Method {
			case http.MethodPost:
				s.purgeCache(w, r, wp)
			case http.MethodGet, http.MethodHead:
				s.purgeRequests(w, r, wp)
			default:
				s.fail(w, "", http.StatusNotFound, "ResourceNotFound", "Method "+r.Method+" is not supported for this resource")
			}
		default:
			s.fail(w, "", http.StatusNotFound, "ResourceNotFound", "The requested resource does not exist")
		}
	})
}

// authenticate verifies the Hawk signature; an anonymous caller is refused.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, method string) (*hawkauth.Identity, bool) {
	id, err := s.verifier.Verify(r)
	if err != nil {
		s.fail(w, method, http.StatusUnauthorized, "AuthenticationFailed", err.Error())
		return nil, false
	}
	if id == nil {
		s.fail(w, method, http.StatusUnauthorized, "AuthenticationFailed",
			"This request requires Taskcluster credentials (a Hawk signature); none were given. Create the client with credentials, e.g. tcpurgecache.New(&tcclient.Credentials{ClientID: ..., AccessToken: ...}, rootURL).")
		return nil, false
	}
	return id, true
}

func (s *Server) purgeCache(w http.ResponseWriter, r *http.Request, wp string) {
	const method = "purgeCache"
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		s.fail(w, method, http.StatusBadRequest, "MalformedPayload", "could not read the request body: "+err.Error())
		return
	}
	r.Body = io.NopCloser(strings.NewReader(string(body)))
	id, ok := s.authenticate(w, r, method)
	if !ok {
		return
	}
	var in map[string]any
	if err := json.Unmarshal(body, &in); err != nil {
		s.fail(w, method, http.StatusBadRequest, "InputValidationError", "the body must be a JSON object {\"cacheName\": \"...\"}: "+err.Error())
		return
	}
	name, isString := in["cacheName"].(string)
	if !isString || len(in) != 1 {
		s.fail(w, method, http.StatusBadRequest, "InputValidationError", "the body must be exactly {\"cacheName\": \"<name>\"} (purge-cache-request.json)")
		return
	}
	scope := "purge-cache:" + wp + ":" + name
	if !id.HasScopes(scope) {
		s.fail(w, method, http.StatusForbidden, "InsufficientScopes",
			fmt.Sprintf("Client ID %s does not have sufficient scopes and is missing the following scopes:\n\n```\n%s\n```", id.ClientID, scope))
		return
	}
	now := s.now()
	s.mu.Lock()
	s.requests[key{wp, name}] = request{before: now, expires: now.Add(requestLifetime)}
	s.mu.Unlock()
	s.log.Info("purge-cache request", "workerPoolId", wp, "cacheName", name, "clientId", id.ClientID)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) purgeRequests(w http.ResponseWriter, r *http.Request, wp string) {
	const method = "purgeRequests"
	if _, ok := s.authenticate(w, r, method); !ok {
		return
	}
	var since time.Time
	if v := r.URL.Query().Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			s.fail(w, method, http.StatusBadRequest, "InvalidRequestArguments", fmt.Sprintf("Invalid Date: since=%q; give an RFC 3339 date-time", v))
			return
		}
		since = t
	}
	writeJSON(w, http.StatusOK, map[string]any{"requests": s.open(func(k key, q request) bool {
		return k.workerPoolID == wp && !q.before.Before(since)
	})})
}

func (s *Server) allPurgeRequests(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authenticate(w, r, "allPurgeRequests"); !ok {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"requests": s.open(func(key, request) bool { return true })})
}

// open lists the unexpired requests that keep selects, oldest first.
func (s *Server) open(keep func(key, request) bool) []entry {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []entry{}
	for k, q := range s.requests {
		if !q.expires.After(now) {
			delete(s.requests, k)
			continue
		}
		if !keep(k, q) {
			continue
		}
		p, wt, _ := strings.Cut(k.workerPoolID, "/")
		out = append(out, entry{ProvisionerID: p, WorkerType: wt, CacheName: k.cacheName, Before: q.before.UTC().Format("2006-01-02T15:04:05.000Z")})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Before != out[j].Before {
			return out[i].Before < out[j].Before
		}
		return out[i].CacheName < out[j].CacheName
	})
	return out
}

// fail answers with Taskcluster's error shape.
func (s *Server) fail(w http.ResponseWriter, method string, status int, code, message string) {
	if code == "AuthenticationFailed" {
		w.Header().Set("WWW-Authenticate", "hawk")
	}
	msg := fmt.Sprintf("%s\n\n---\n\n* method:     %s\n* errorCode:  %s\n* statusCode: %d\n* time:       %s",
		message, method, code, status, s.now().UTC().Format("2006-01-02T15:04:05.000Z"))
	writeJSON(w, status, map[string]any{"code": code, "message": msg, "requestInfo": map[string]any{"method": method}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "devpurgecache: encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
