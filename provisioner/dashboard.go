package provisioner

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"
	"net/url"
	"time"

	"github.com/labrunner/labrunner/provisioner/client"
)

// dashboardChallenge asks a browser for HTTP Basic credentials: any user
// name, and a read-only or admin token as the password.
const dashboardChallenge = `Basic realm="labrunner provisioner"`

// dashboardFiles are the pages' templates: dashboard.html holds the
// frame (head, nav, foot) and the main pages; other dashboard*.html files
// add pages of their own.
//
//go:embed dashboard*.html
var dashboardFiles embed.FS

// dashboardTemplates are the pages; html/template escapes every value.
var dashboardTemplates = template.Must(template.New("dashboard").ParseFS(dashboardFiles, "dashboard*.html"))

// page is one dashboard page: render returns the template to execute and
// its data, for a caller already admitted; c (who is looking, the flash
// message) goes into the data so that the frame can show it.
type page struct {
	pattern string
	render  func(r *http.Request, c chrome) (name string, data any, aerr *apiError)
}

// chrome is what every page shows around its content.
type chrome struct {
	Title string
	// Refresh makes the page reload itself every 30 s (not for those
	// who may act: a reload would lose a half-filled form).
	Refresh bool
	Now     string
	// Viewer is who looks (nil on the sign-in and error pages).
	Viewer *viewer
	// Flash is the outcome of the last action.
	Flash    string
	FlashBad bool
}

// AutoRefresh reports whether the page reloads itself.
func (c chrome) AutoRefresh() bool { return c.Refresh && (c.Viewer == nil || !c.Viewer.CanAct) }

// errorView is the data of the error page.
type errorView struct {
	chrome
	Status  int
	Message string
}

// mountDashboard serves the dashboard's pages, sign-in and forms on mux.
func (s *Server) mountDashboard(mux *http.ServeMux) {
	for _, pg := range s.dashboardRoutes() {
		mux.Handle("GET "+pg.pattern, s.servePage(pg))
	}
	mux.HandleFunc("GET /dashboard/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/dashboard", http.StatusFound)
	})
	for pattern, h := range map[string]http.HandlerFunc{
		"GET /dashboard/login":    s.serveLogin,
		"POST /dashboard/login":   s.login,
		"POST /dashboard/logout":  s.logout,
		"POST /dashboard/actions": s.dashboardActions,
	} {
		mux.Handle(pattern, s.timed(pattern, h))
	}
}

// timed sets the pages' security headers and records the request in the
// API latency metric under route.
func (s *Server) timed(route string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		defer func() { s.metrics.observeRequest(route, sw.status, time.Since(start)) }()
		hd := sw.Header()
		hd.Set("Cache-Control", "no-store")
		hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		// same-origin, not no-referrer: with no-referrer a browser sends
		// "Origin: null" with form posts, and the same-origin check needs
		// the real origin.
		hd.Set("Referrer-Policy", "same-origin")
		h(sw, r)
	})
}

// servePage admits the caller, renders the page and records the request
// in the API latency metric.
func (s *Server) servePage(pg page) http.Handler {
	return s.timed("GET "+pg.pattern, func(w http.ResponseWriter, r *http.Request) {
		v, aerr := s.pageViewer(r)
		if aerr != nil {
			if aerr.status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", dashboardChallenge)
			}
			s.writeErrorPage(w, aerr)
			return
		}
		if v == nil {
			http.Redirect(w, r, "/dashboard/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		c := chrome{Now: stamp(s.now()), Viewer: v}
		if f, ok := s.takeFlash(w, r); ok {
			c.Flash, c.FlashBad = f.Message, f.Bad
		}
		name, data, aerr := pg.render(r, c)
		if aerr != nil {
			if aerr.status >= 500 {
				s.log.Error("dashboard request failed", "route", pg.pattern, "error", aerr.msg)
			}
			s.writeErrorPageFor(w, aerr, v)
			return
		}
		s.writePage(w, http.StatusOK, name, data)
	})
}

// pageViewer admits a page's caller: a session cookie, or a token sent as
// HTTP Basic password or bearer (scripts; they see no forms). With none
// of them it returns nil, and the caller is sent to sign in.
func (s *Server) pageViewer(r *http.Request) (*viewer, *apiError) {
	v, aerr, err := s.sessionViewer(r)
	if aerr != nil {
		return nil, aerr
	}
	if err == nil {
		return v, nil
	}
	if r.Header.Get("Authorization") == "" {
		return nil, nil
	}
	p, aerr := s.dashboardAuth(r)
	if aerr != nil {
		return nil, aerr
	}
	return &viewer{Who: p.name, Kind: p.kind, p: p}, nil
}

// dashboardAuth admits admin and read-only tokens, sent as the password of
// HTTP Basic auth or as a bearer token. Every refusal is a 401.
func (s *Server) dashboardAuth(r *http.Request) (*principal, *apiError) {
	if _, pass, ok := r.BasicAuth(); ok {
		if pass == "" {
			return nil, errStatus(http.StatusUnauthorized, "AuthenticationRequired", "send a read-only or admin token as the password (any user name), or sign in at /dashboard/login")
		}
		// authenticate reads the bearer header; the clone keeps the
		// caller's request as it came.
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+pass)
	} else if bearer(r) == "" {
		return nil, errStatus(http.StatusUnauthorized, "AuthenticationRequired", "send `Authorization: Bearer <token>` with a read-only or admin token, or sign in at /dashboard/login")
	}
	p, aerr := s.authenticate(r.Context(), r)
	if aerr != nil {
		if aerr.status == http.StatusForbidden {
			aerr.status = http.StatusUnauthorized
		}
		return nil, aerr
	}
	if p.kind != client.TokenAdmin && p.kind != client.TokenReadOnly {
		return nil, errStatus(http.StatusUnauthorized, "Forbidden", "the dashboard needs a read-only or admin token; %s is a %s token", p.name, p.kind)
	}
	return p, nil
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
	s.writeErrorPageFor(w, aerr, nil)
}

// writeErrorPageFor is the error page for a caller already admitted (v),
// with the frame's navigation.
func (s *Server) writeErrorPageFor(w http.ResponseWriter, aerr *apiError, v *viewer) {
	s.writePage(w, aerr.status, "error", errorView{chrome: chrome{Title: http.StatusText(aerr.status), Viewer: v}, Status: aerr.status, Message: aerr.Error()})
}
