package provisioner

// The dashboard's "Why is this not running?" page (/dashboard/why?q=…):
// a search box taking a taskId or a Buildbot build ("builder #N"), and
// the answer of GET /api/v1/why for it.

import (
	"net/http"
	"net/url"

	"github.com/labrunner/labrunner/provisioner/client"
)

// whyView is the data of the why page.
type whyView struct {
	chrome
	Query string
	// Problem is why the query could not be asked (it names the fix).
	Problem string
	Answer  *client.WhyAnswer
	// TaskHref is the task's page in Taskcluster's UI.
	TaskHref string
}

// dashboardWhy answers the search box.
func (s *Server) dashboardWhy(r *http.Request, c chrome) (string, any, *apiError) {
	c.Title = "why is this not running?"
	v := whyView{chrome: c, Query: r.URL.Query().Get("q")}
	if v.Query == "" {
		return "why", v, nil
	}
	c.Refresh = true
	v.chrome = c
	q, aerr := parseWhyQuery(r)
	if aerr != nil {
		v.Problem = aerr.msg
		return "why", v, nil
	}
	a, aerr := s.why(r.Context(), q)
	if aerr != nil {
		return "", nil, aerr
	}
	v.Answer = a
	if a.TaskID != "" && s.cfg.RootURL != "" {
		v.TaskHref = s.cfg.RootURL + "/tasks/" + url.PathEscape(a.TaskID)
	}
	return "why", v, nil
}
