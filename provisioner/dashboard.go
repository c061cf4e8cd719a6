package provisioner

import (
	"bytes"
	_ "embed"
	"html/template"
	"net/http"
	"time"

	"github.com/labrunner/labrunner/provisioner/client"
)

// dashboardChallenge asks a browser for HTTP Basic credentials: any user
// name, and a read-only or admin token as the password.
const dashboardChallenge = `Basic realm="labrunner provisioner"`

//go:embed dashboard.html
var dashboardHTML string

// dashboardTemplates are the pages; html/template escapes every value.
var dashboardTemplates = template.Must(template.New("dashboard").Parse(dashboardHTML))

// page is one dashboard page: render returns the template to execute
// and its data, for a caller already admitted.
type page struct {
	pattern string
	render  func(r *http.Request) (name string, data any, aerr *apiError)
}

// errorView is the data of the error page.
type errorView struct {
	Title   string
	Refresh bool
	Status  int
	Message string
}

// mountDashboard serves the dashboard's pages on mux.
func (s *Server) mountDashboard(mux *http.ServeMux) {
	for _, pg := range s.dashboardRoutes() {
		mux.Handle("GET "+pg.pattern, s.servePage(pg))
	}
	mux.HandleFunc("GET /dashboard/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/dashboard", http.StatusFound)
	})
}

// servePage admits the caller, renders the page and records the request
// in the API latency metric.
func (s *Server) servePage(pg page) http.Handler {
	route := "GET " + pg.pattern
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		defer func() { s.metrics.observeRequest(route, sw.status, time.Since(start)) }()
		h := sw.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if aerr := s.dashboardAuth(r); aerr != nil {
			if aerr.status == http.StatusUnauthorized {
				h.Set("WWW-Authenticate", dashboardChallenge)
			}
			s.writeErrorPage(sw, aerr)
			return
		}
		name, data, aerr := pg.render(r)
		if aerr != nil {
			if aerr.status >= 500 {
				s.log.Error("dashboard request failed", "route", pg.pattern, "error", aerr.msg)
			}
			s.writeErrorPage(sw, aerr)
			return
		}
		s.writePage(sw, http.StatusOK, name, data)
	})
}

// dashboardAuth admits admin and read-only tokens, sent as the password of
// HTTP Basic auth (what a browser can send) or as a bearer token. Every
// refusal is a 401 with a Basic challenge, so that a browser asks again.
func (s *Server) dashboardAuth(r *http.Request) *apiError {
	if _, pass, ok := r.BasicAuth(); ok {
		if pass == "" {
			return errStatus(http.StatusUnauthorized, "AuthenticationRequired", "sign in with a read-only or admin token as the password (any user name)")
		}
		// authenticate reads the bearer header; the clone keeps the
		// caller's request as it came.
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+pass)
	} else if bearer(r) == "" {
		return errStatus(http.StatusUnauthorized, "AuthenticationRequired", "sign in with a read-only or admin token as the password (any user name), or send `Authorization: Bearer <token>`")
	}
	p, aerr := s.authenticate(r.Context(), r)
	if aerr != nil {
		if aerr.status == http.StatusForbidden {
			aerr.status = http.StatusUnauthorized
		}
		return aerr
	}
	if p.kind != client.TokenAdmin && p.kind != client.TokenReadOnly {
		return errStatus(http.StatusUnauthorized, "Forbidden", "the dashboard needs a read-only or admin token; %s is a %s token", p.name, p.kind)
	}
	return nil
}

// writePage renders a page whole before sending it, so that a template
// failure is a clean 500 rather than half a page.
func (s *Server) writePage(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := dashboardTemplates.ExecuteTemplate(&buf, name, data); err != nil {
		s.log.Error("dashboard page not rendered", "page", name, "error", err)
		http.Error(w, "the page could not be rendered; the provisioner's log says why", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (s *Server) writeErrorPage(w http.ResponseWriter, aerr *apiError) {
	s.writePage(w, aerr.status, "error", errorView{Title: http.StatusText(aerr.status), Status: aerr.status, Message: aerr.Error()})
}
