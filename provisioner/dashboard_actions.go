package provisioner

// The dashboard's actions: one form post, POST /dashboard/actions, from a
// machine's page (one machine) or from the machines table (the checked
// rows). The button pressed names the action; the same checks and
// records as the API's action routes apply, and the browser is sent back
// to the page it came from with the outcome.

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labrunner/labrunner/provisioner/client"
)

// Dashboard action names (the value of the pressed button).
const (
	formQuarantine = "quarantine"
	formRelease    = "release"
	formDrain      = "drain"
	formReboot     = "reboot"
	formMove       = "move"
)

const (
	// maxFormMachines bounds one post's selection.
	maxFormMachines = 500
	// maxReason is the longest reason a form records.
	maxReason = 500
)

// dashboardActions applies the pressed action to each selected machine.
func (s *Server) dashboardActions(w http.ResponseWriter, r *http.Request) {
	v, aerr := s.checkForm(w, r)
	if aerr != nil {
		s.writeErrorPage(w, aerr)
		return
	}
	if !v.CanAct {
		s.writeErrorPageFor(w, errStatus(http.StatusForbidden, "Forbidden", "actions need an admin token; %s signed in with a %s token", v.Who, v.Kind), v)
		return
	}
	f := r.PostForm
	back := safeNext(f.Get("return"))
	ids := f["machine"]
	action := f.Get("action")
	act, aerr := s.formAction(r.Context(), action, f.Get("reason"), f.Get("duration"), f.Get("pool"), v.p)
	if aerr == nil && len(ids) == 0 {
		aerr = badField("machine", "no machine selected: tick the machines to act on")
	}
	if aerr == nil && len(ids) > maxFormMachines {
		aerr = badField("machine", "%d machines selected; at most %d at once", len(ids), maxFormMachines)
	}
	if aerr != nil {
		s.setFlash(w, r, action+" not done: "+aerr.Error(), true)
		http.Redirect(w, r, back, http.StatusSeeOther)
		return
	}
	var done, failed []string
	for _, id := range ids {
		warnings, aerr := s.applyAction(r.Context(), id, act)
		switch {
		case aerr != nil:
			failed = append(failed, id+": "+aerr.Error())
		case len(warnings) > 0:
			done = append(done, id+" ("+strings.Join(warnings, "; ")+")")
		default:
			done = append(done, id)
		}
	}
	var msg []string
	if len(done) > 0 {
		msg = append(msg, fmt.Sprintf("%s done for %s.", action, strings.Join(done, ", ")))
	}
	if len(failed) > 0 {
		msg = append(msg, fmt.Sprintf("%s failed for %s.", action, strings.Join(failed, "; ")))
	}
	s.setFlash(w, r, strings.Join(msg, " "), len(failed) > 0)
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// formAction checks a form's fields for action and returns what it does
// to one machine; errors name the form field.
func (s *Server) formAction(ctx context.Context, action, reason, duration, pool string, p *principal) (machineActionFunc, *apiError) {
	reason = strings.TrimSpace(reason)
	if msg := checkText("reason", reason, maxReason); msg != "" {
		return machineActionFunc{}, badField("reason", "%s", msg)
	}
	switch action {
	case formQuarantine:
		if reason == "" {
			return machineActionFunc{}, badField("reason", "missing: say why the machine is quarantined, for the record")
		}
		d, err := parseFormDuration(duration)
		if err != nil {
			return machineActionFunc{}, badField("duration", "%v", err)
		}
		return s.quarantineAction(client.QuarantineRequest{Reason: reason, Until: s.now().Add(d)}, p), nil
	case formRelease:
		return s.unquarantineAction(client.ActionRequest{Reason: reason}, p), nil
	case formDrain:
		return s.directiveAction(client.DirectiveDrain, "drain", client.ActionRequest{Reason: reason}, p), nil
	case formReboot:
		return s.directiveAction(client.DirectiveReboot, "reboot", client.ActionRequest{Reason: reason}, p), nil
	case formMove:
		if pool == "" {
			return machineActionFunc{}, badField("pool", "missing: choose the pool to move the machines to")
		}
		if aerr := validatePoolID("pool", pool); aerr != nil {
			return machineActionFunc{}, aerr
		}
		return s.assignAction(ctx, client.AssignRequest{PoolID: pool, Reason: reason}, p)
	}
	return machineActionFunc{}, badField("action", "%q is not an action: quarantine, release, drain, reboot or move", action)
}

// parseFormDuration reads a quarantine's length: a Go duration (90m, 48h)
// or whole days (7d), positive and at most a year.
func parseFormDuration(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, fmt.Errorf("missing: how long, such as 2h, 48h or 7d")
	}
	var d time.Duration
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration such as 2h, 48h or 7d", v)
		}
		if n <= 0 || n > 365 {
			return 0, fmt.Errorf("%s is out of range: more than 0 and at most 365d", v)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			return 0, fmt.Errorf("%q is not a duration such as 2h, 48h or 7d", v)
		}
	}
	if d <= 0 || d > maxQuarantineFor {
		return 0, fmt.Errorf("%s is out of range: more than 0 and at most 365d", v)
	}
	return d, nil
}
