//go:build linux

package runner

import (
	"strings"
	"testing"

	"github.com/labrunner/labrunner/provisioner/client"
)

// TestProvisionerDrainReasonReachesStatus: a drain asked for by the
// provisioner shows in `runner status` with its reason, and the state
// says drained once nothing runs, as the provisioner's registry does.
func TestProvisionerDrainReasonReachesStatus(t *testing.T) {
	e := newProvEnv(t, nil)
	rn, id := e.startLinked()
	if _, err := e.prov.admin.Drain(e.prov.ctx(), id, "firmware update on rack 4"); err != nil {
		t.Fatal(err)
	}
	s := e.waitStatus(rn, "drained by the provisioner", func(s *Status) bool { return s.State == PhaseDrained })
	if s.DrainReason != "the provisioner: firmware update on rack 4" {
		t.Errorf("drain reason %q", s.DrainReason)
	}
	text := statusText(t, s)
	if !strings.Contains(text, "drained by the provisioner: firmware update on rack 4") {
		t.Errorf("status text:\n%s", text)
	}
	linkEventually(t, "drained in the registry", func() bool { return e.prov.machine(id).State == client.StateDrained })
}
