package provisioner

// Dashboard sign-in. A browser signs in once with a token through the
// login form and then carries a session cookie:
//
//	GET  /dashboard/login   → form (token, optional name for the record)
//	POST /dashboard/login   → same-origin check, token checked → cookie, 303 to the page asked for
//	any page                → cookie verified (signature, expiry) and its token re-checked
//	POST /dashboard/…       → same-origin check + the session's form token (csrf field)
//	POST /dashboard/logout  → same-origin check + form token → session id recorded as ended, cookie cleared
//
// The cookie carries the token's hash, the kind, the operator's name, a
// random session id (new at every sign-in) and the expiry, signed with
// HMAC-SHA256 under the dashboard key (Config.DashboardSecret, or a random
// key per process). The form token is an HMAC of the session id under the
// same key, so it differs per session and cannot be computed without the
// key. Re-checking the token on each request ends the sessions of a token
// that expired; the store's list of signed-out session ids ends a session
// on every replica at sign-out, so that a copy of its cookie is refused.
// How the cookie is named and flagged depends on where the browsers are
// (dashboard_origin.go).

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/labrunner/labrunner/provisioner/client"
)

const (
	// sessionCookie carries the signed session.
	sessionCookie = "labrunner_dashboard"
	// flashCookie carries the outcome of the last action to the page the
	// browser is sent back to.
	flashCookie = "labrunner_flash"
	// sessionTTL is how long a sign-in lasts.
	sessionTTL = 12 * time.Hour
	// maxFormBody bounds a dashboard form post.
	maxFormBody = 64 << 10
)

// session is what the cookie carries.
type session struct {
	Kind      string `json:"k"`
	TokenHash []byte `json:"h"`
	Operator  string `json:"o,omitempty"`
	ID        string `json:"s"`
	Expires   int64  `json:"e"`
}

// viewer is who looks at a page and what the page lets them do.
type viewer struct {
	// Who is the name actions are recorded under.
	Who string
	// Kind is admin or readonly.
	Kind string
	// CanAct shows the action forms: an admin signed in through the form
	// (a bearer or Basic caller has no session, hence no form token).
	CanAct bool
	// SignedIn is true with a session (the page offers to sign out).
	SignedIn bool
	// CSRF is the session's form token, sent back in every form.
	CSRF string

	p *principal
	// sess is the session signed in with (nil for a bearer or Basic caller).
	sess *session
}

// dashboardKey derives the signing key from the configured secret, or
// makes a random one (sessions then end with the process and hold only on
// the replica that signed them).
func dashboardKey(secret string) ([]byte, error) {
	if secret != "" {
		if len(secret) < 32 {
			return nil, fmt.Errorf("dashboardSecret is shorter than 32 characters: use `openssl rand -hex 32`")
		}
		k := sha256.Sum256([]byte("labrunner dashboard\x00" + secret))
		return k[:], nil
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("dashboard session key: %w", err)
	}
	return k, nil
}

// sign returns value.mac for a payload, the MAC bound to purpose so that a
// flash cookie cannot pass for a session.
func (s *Server) sign(purpose string, payload []byte) string {
	v := base64.RawURLEncoding.EncodeToString(payload)
	return v + "." + base64.RawURLEncoding.EncodeToString(s.mac(purpose, v))
}

// unsign checks a signed value and returns its payload.
func (s *Server) unsign(purpose, signed string) ([]byte, bool) {
	v, m, ok := strings.Cut(signed, ".")
	if !ok {
		return nil, false
	}
	got, err := base64.RawURLEncoding.DecodeString(m)
	if err != nil || !hmac.Equal(got, s.mac(purpose, v)) {
		return nil, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(v)
	return payload, err == nil
}

func (s *Server) mac(purpose, v string) []byte {
	h := hmac.New(sha256.New, s.dashKey)
	h.Write([]byte(purpose + "\x00" + v))
	return h.Sum(nil)
}

// csrfToken is the session's form token.
func (s *Server) csrfToken(sessionID string) string {
	return base64.RawURLEncoding.EncodeToString(s.mac("csrf", sessionID))
}

// errNoSession means the request carries no valid session cookie.
var errNoSession = errors.New("no dashboard session")

// sessionViewer reads the session cookie and re-checks its token.
func (s *Server) sessionViewer(r *http.Request) (*viewer, *apiError, error) {
	c, err := r.Cookie(s.cookieName(r, sessionCookie))
	if err != nil {
		return nil, nil, errNoSession
	}
	payload, ok := s.unsign("session", c.Value)
	if !ok {
		return nil, nil, errNoSession
	}
	var sess session
	if err := json.Unmarshal(payload, &sess); err != nil || sess.ID == "" || !s.now().Before(time.Unix(sess.Expires, 0)) {
		return nil, nil, errNoSession
	}
	ended, err := s.store.SessionEnded(r.Context(), sess.ID)
	if err != nil {
		return nil, errStatus(http.StatusServiceUnavailable, "StoreUnavailable", "check session: %v", err), nil
	}
	if ended {
		return nil, nil, errNoSession
	}
	p, aerr := s.tokenPrincipal(r.Context(), sess.TokenHash)
	if aerr != nil {
		if aerr.status == http.StatusServiceUnavailable {
			return nil, aerr, nil
		}
		return nil, nil, errNoSession
	}
	if p.kind != sess.Kind || (p.kind != client.TokenAdmin && p.kind != client.TokenReadOnly) {
		return nil, nil, errNoSession
	}
	who := p.name + " (dashboard)"
	if sess.Operator != "" {
		who = fmt.Sprintf("%s via %s (dashboard)", sess.Operator, p.name)
	}
	return &viewer{Who: who, Kind: p.kind, CanAct: p.kind == client.TokenAdmin, SignedIn: true, CSRF: s.csrfToken(sess.ID),
		p: &principal{kind: p.kind, name: who}, sess: &sess}, nil, nil
}

// checkForm admits a dashboard form post: same origin, a session, and the
// session's form token. It parses the form.
func (s *Server) checkForm(w http.ResponseWriter, r *http.Request) (*viewer, *apiError) {
	if aerr := s.sameOrigin(r); aerr != nil {
		return nil, aerr
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil {
		return nil, badField("(body)", "the form could not be read: %v", err)
	}
	v, aerr, err := s.sessionViewer(r)
	if aerr != nil {
		return nil, aerr
	}
	if err != nil {
		return nil, errStatus(http.StatusForbidden, "SessionRequired", "form refused: sign in at /dashboard/login first (a session is needed; scripts use the API)")
	}
	if !hmac.Equal([]byte(r.PostForm.Get("csrf")), []byte(v.CSRF)) {
		return nil, errStatus(http.StatusForbidden, "BadFormToken", "form refused: its form token is missing or is not this session's; reload the page and try again")
	}
	return v, nil
}

// loginView is the data of the sign-in page.
type loginView struct {
	chrome
	Next, Name, Error string
}

// serveLogin shows the sign-in form.
func (s *Server) serveLogin(w http.ResponseWriter, r *http.Request) {
	s.writePage(w, http.StatusOK, "login", loginView{chrome: chrome{Title: "sign in · labrunner provisioner"}, Next: safeNext(r.URL.Query().Get("next"))})
}

// login checks the token of the sign-in form and starts a session.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if aerr := s.sameOrigin(r); aerr != nil {
		s.writeErrorPage(w, aerr)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil {
		s.writeErrorPage(w, badField("(body)", "the form could not be read: %v", err))
		return
	}
	v := loginView{chrome: chrome{Title: "sign in · labrunner provisioner"}, Next: safeNext(r.PostForm.Get("next")), Name: strings.TrimSpace(r.PostForm.Get("name"))}
	fail := func(status int, msg string) {
		v.Error = msg
		s.writePage(w, status, "login", v)
	}
	if msg := checkText("name", v.Name, 64); msg != "" {
		fail(http.StatusBadRequest, msg)
		return
	}
	tok := r.PostForm.Get("token")
	if tok == "" {
		fail(http.StatusUnauthorized, "Enter an admin or read-only token.")
		return
	}
	p, aerr := s.tokenPrincipal(r.Context(), hashToken(tok))
	if aerr != nil && aerr.status == http.StatusServiceUnavailable {
		fail(aerr.status, aerr.Error())
		return
	}
	if aerr != nil || (p.kind != client.TokenAdmin && p.kind != client.TokenReadOnly) {
		fail(http.StatusUnauthorized, "That token is unknown, expired, or not an admin or read-only token.")
		return
	}
	id := make([]byte, 18)
	if _, err := rand.Read(id); err != nil {
		fail(http.StatusInternalServerError, "no session id: "+err.Error())
		return
	}
	sess := session{Kind: p.kind, TokenHash: hashToken(tok), Operator: v.Name, ID: base64.RawURLEncoding.EncodeToString(id),
		Expires: s.now().Add(sessionTTL).Unix()}
	payload, _ := json.Marshal(sess)
	http.SetCookie(w, s.cookie(r, sessionCookie, s.sign("session", payload), sessionTTL))
	s.log.Info("dashboard sign-in", "who", p.name, "operator", v.Name, "kind", p.kind)
	http.Redirect(w, r, v.Next, http.StatusSeeOther)
}

// logout ends the browser's session, on every replica: its id is
// recorded as ended before the cookie is cleared, so that a copy of the
// cookie is refused too. When the store cannot record it the cookie is
// kept, and the page says to try again.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	v, aerr := s.checkForm(w, r)
	if aerr != nil {
		s.writeErrorPage(w, aerr)
		return
	}
	if err := s.store.EndSession(r.Context(), v.sess.ID, time.Unix(v.sess.Expires, 0), s.now()); err != nil {
		s.log.Error("dashboard sign-out not recorded", "who", v.Who, "error", err)
		s.writeErrorPageFor(w, errStatus(http.StatusServiceUnavailable, "StoreUnavailable", "sign-out not recorded, so the session still holds: %v; try again", err), v)
		return
	}
	s.log.Info("dashboard sign-out", "who", v.Who)
	http.SetCookie(w, s.cookie(r, sessionCookie, "", -1))
	http.Redirect(w, r, "/dashboard/login", http.StatusSeeOther)
}

// setFlash leaves msg for the next page the browser loads.
func (s *Server) setFlash(w http.ResponseWriter, r *http.Request, msg string, bad bool) {
	payload, _ := json.Marshal(flash{Message: msg, Bad: bad, Expires: s.now().Add(time.Minute).Unix()})
	http.SetCookie(w, s.cookie(r, flashCookie, s.sign("flash", payload), time.Minute))
}

// flash is the outcome of an action, shown once.
type flash struct {
	Message string `json:"m"`
	Bad     bool   `json:"b,omitempty"`
	Expires int64  `json:"e"`
}

// takeFlash reads and clears the flash cookie.
func (s *Server) takeFlash(w http.ResponseWriter, r *http.Request) (flash, bool) {
	c, err := r.Cookie(s.cookieName(r, flashCookie))
	if err != nil {
		return flash{}, false
	}
	http.SetCookie(w, s.cookie(r, flashCookie, "", -1))
	payload, ok := s.unsign("flash", c.Value)
	var f flash
	if !ok || json.Unmarshal(payload, &f) != nil || !s.now().Before(time.Unix(f.Expires, 0)) {
		return flash{}, false
	}
	return f, true
}

// safeNext is where to send the browser after a form: a dashboard path
// on this host, /dashboard otherwise.
func safeNext(next string) string {
	u, err := url.Parse(next)
	if err != nil || next == "" || u.Scheme != "" || u.Host != "" || u.User != nil || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/dashboard"
	}
	if u.Path != "/dashboard" && !strings.HasPrefix(u.Path, "/dashboard/") {
		return "/dashboard"
	}
	return u.RequestURI()
}

// checkText refuses form text that the store could not keep or that is
// too long; the message names the field.
func checkText(field, v string, max int) string {
	switch {
	case !utf8.ValidString(v):
		return field + " is not valid UTF-8"
	case utf8.RuneCountInString(v) > max:
		return fmt.Sprintf("%s is longer than %d characters", field, max)
	case strings.ContainsFunc(v, func(r rune) bool { return unicode.IsControl(r) && r != '\t' }):
		return field + " holds control characters"
	}
	return ""
}
