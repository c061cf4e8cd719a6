package platform

import (
	"fmt"
	"testing"
	"time"

	"golang.org/x/sys/windows/svc/eventlog"
)

func TestServiceLogWritesEvents(t *testing.T) {
	name := fmt.Sprintf("labrunner-test-%d", time.Now().UnixNano())
	if err := eventlog.InstallAsEventCreate(name, eventlog.Error|eventlog.Warning|eventlog.Info); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eventlog.Remove(name) })
	w, err := ServiceLog(name)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, rec := range []string{"time=x level=INFO msg=started\n", "time=x level=WARN msg=quarantined\n", "time=x level=ERROR msg=\"reboot failed\"\n"} {
		if n, err := w.Write([]byte(rec)); err != nil || n != len(rec) {
			t.Errorf("write %q: %d, %v", rec, n, err)
		}
	}
}
