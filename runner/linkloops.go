package runner

// The link's two loops once registered: heartbeats (whose answers carry
// directives) and the directives long poll, their delivery, and the
// backoff both use after a failure.

import (
	"cmp"
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labrunner/labrunner/provisioner/client"
)

// unknownKindOfWork reports whether a heartbeat was refused for naming a
// run's kind or Buildbot build, fields that older provisioners refuse as
// unknown.
func unknownKindOfWork(err error) bool {
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || !strings.Contains(ae.Body.Message, "unknown field") {
		return false
	}
	switch ae.Body.Field {
	case "currentTask.kind", "currentTask.builder", "currentTask.buildNumber":
		return true
	}
	return false
}

// heartbeatLoop heartbeats every interval (sooner when kicked), delivering
// the directives in each answer.
func (l *ProvisionerLink) heartbeatLoop(ctx context.Context) error {
	failures := 0
	plainRefs := false // the provisioner predates the kind of work
	for {
		id, tok, after := l.session()
		hb := l.cfg.Snapshot()
		if plainRefs && hb.CurrentTask != nil {
			hb.CurrentTask = &client.TaskRef{TaskID: hb.CurrentTask.TaskID, RunID: hb.CurrentTask.RunID}
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		resp, err := l.anon.WithToken(tok).Heartbeat(cctx, id, after, hb)
		cancel()
		wait := l.cfg.HeartbeatInterval
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err == nil:
			failures = 0
			l.log.Debug("heartbeat answered", "machine", id, "state", hb.State, "directives", len(resp.Directives))
			l.contact()
			l.deliver(ctx, resp.Directives)
			l.flushRuns(ctx, id, tok)
		case !plainRefs && unknownKindOfWork(err):
			plainRefs = true
			l.log.Warn("the provisioner predates the kind of work in heartbeats; reporting Buildbot builds by task id only", "error", err)
			continue
		case refusedToken(err):
			l.failed(err)
			l.log.Warn("the provisioner refused the machine token; registering again", "error", err)
			if err := l.register(ctx, tok); err != nil {
				return err
			}
			continue
		default:
			l.failed(err)
			l.log.Warn("heartbeat failed", "error", err)
			wait = min(l.backoffDelay(failures), l.cfg.HeartbeatInterval)
			failures++
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		case <-l.kick:
			t.Stop()
		}
	}
}

// pollLoop long-polls directives and delivers them.
func (l *ProvisionerLink) pollLoop(ctx context.Context) error {
	failures := 0
	for {
		id, tok, after := l.session()
		cctx, cancel := context.WithTimeout(ctx, l.cfg.PollWait+time.Minute)
		ds, err := l.anon.WithToken(tok).Directives(cctx, id, after, l.cfg.PollWait)
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err == nil:
			failures = 0
			l.contact()
			l.deliver(ctx, ds)
		case refusedToken(err):
			l.failed(err)
			l.log.Warn("the provisioner refused the machine token; registering again", "error", err)
			if err := l.register(ctx, tok); err != nil {
				return err
			}
		default:
			l.failed(err)
			l.log.Warn("directives long-poll failed", "error", err)
			if err := l.backoff(ctx, failures); err != nil {
				return err
			}
			failures++
		}
	}
}

// deliver hands new directives to Handle in id order, each once.
func (l *ProvisionerLink) deliver(ctx context.Context, ds []client.Directive) {
	if len(ds) == 0 {
		return
	}
	l.deliverMu.Lock()
	defer l.deliverMu.Unlock()
	ds = slices.Clone(ds)
	slices.SortFunc(ds, func(a, b client.Directive) int { return cmp.Compare(a.ID, b.ID) })
	for _, d := range ds {
		if _, _, last := l.session(); d.ID <= last {
			continue
		}
		if as, changed := l.apply(d); changed && l.cfg.OnAssignment != nil {
			l.cfg.OnAssignment(as)
		}
		if err := l.cfg.Handle(ctx, d); err != nil {
			// Later ones wait too: directives are applied in order.
			l.log.Warn("directive not handled; it will be delivered again", "directive", d.ID, "kind", d.Kind, "error", err)
			return
		}
		l.mu.Lock()
		l.st.LastDirective = d.ID
		err := l.saveLocked()
		l.mu.Unlock()
		if err != nil {
			l.log.Error("cannot save the last handled directive", "directive", d.ID, "error", err)
		}
		l.log.Info("directive handled", "directive", d.ID, "kind", d.Kind, "reason", d.Reason)
	}
}

// apply updates the assignment from a reassign or new-credentials
// directive and reports the new assignment.
func (l *ProvisionerLink) apply(d client.Directive) (client.Assignment, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case d.Kind == client.DirectiveReassign && d.Assignment != nil:
		as := *d.Assignment
		if as.Credentials == nil && l.st.Assignment != nil && l.st.Assignment.PoolID == as.PoolID {
			as.Credentials = l.st.Assignment.Credentials
		}
		l.st.Assignment = &as
	case d.Kind == client.DirectiveNewCredentials && d.Credentials != nil:
		as := client.Assignment{}
		if l.st.Assignment != nil {
			as = *l.st.Assignment
		}
		c := *d.Credentials
		as.Credentials = &c
		l.st.Assignment = &as
	default:
		return client.Assignment{}, false
	}
	if err := l.saveLocked(); err != nil {
		l.log.Error("cannot save the new assignment", "directive", d.ID, "error", err)
	}
	return *l.st.Assignment, true
}
func (l *ProvisionerLink) contact() {
	now := time.Now().UTC()
	l.mu.Lock()
	l.status.Connected, l.status.LastContact = true, &now
	l.mu.Unlock()
}
func (l *ProvisionerLink) failed(err error) {
	now := time.Now().UTC()
	l.mu.Lock()
	l.status.Connected, l.status.LastError, l.status.LastErrorAt = false, err.Error(), &now
	l.mu.Unlock()
}

// backoffDelay is the jittered exponential delay after n+1 failures.
func (l *ProvisionerLink) backoffDelay(n int) time.Duration {
	d := l.cfg.RetryMin << min(n, 16)
	if d <= 0 || d > l.cfg.RetryMax {
		d = l.cfg.RetryMax
	}
	return d/2 + rand.N(d/2+1)
}
func (l *ProvisionerLink) backoff(ctx context.Context, n int) error {
	t := time.NewTimer(l.backoffDelay(n))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
