package platform

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/mgr"
)

// serviceWaitsForConfig is false on Windows for now: under Wine, a service
// that waited for its configuration and then started did not heartbeat to
// the provisioner (the same runner in the foreground does), which is not
// understood and not checked on real Windows. Until it is, an unenrolled
// service exits and the recovery actions restart it (docs/install-windows.md).
const serviceWaitsForConfig = false

const serviceName = "labrunner"

// serviceOptions: a LocalSystem service started automatically; recovery
// and delayed start are set by afterServiceInstall (kardianos sets neither
// the non-crash flag nor, under Wine, delayed start).
func serviceOptions(string, []string) map[string]any {
	return map[string]any{"StartType": "automatic"}
}

// Recovery: restart after 10 s, 30 s, then every 60 s; the failure count
// resets after a day without failures.
var (
	serviceRecovery = []mgr.RecoveryAction{
		{Type: mgr.ServiceRestart, Delay: 10 * time.Second},
		{Type: mgr.ServiceRestart, Delay: 30 * time.Second},
		{Type: mgr.ServiceRestart, Delay: 60 * time.Second},
	}
	serviceRecoveryReset = uint32((24 * time.Hour).Seconds())
)

func afterServiceInstall(name string) error { return ConfigureWindowsService(name) }

// ConfigureWindowsService sets restart-on-failure (also when the service
// stops with an error exit code rather than crashing) and delayed
// automatic start on an installed service. Every step is attempted; the
// error lists those that failed.
func ConfigureWindowsService(name string) error {
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("configure service %s: connect to the service manager: %w", name, err)
	}
	defer m.Disconnect()
	s, err := m.OpenService(name)
	if err != nil {
		return fmt.Errorf("configure service %s: %w", name, err)
	}
	defer s.Close()
	var errs []error
	if err := s.SetRecoveryActions(serviceRecovery, serviceRecoveryReset); err != nil {
		errs = append(errs, fmt.Errorf("restart on failure: %w", err))
	}
	if err := s.SetRecoveryActionsOnNonCrashFailures(true); err != nil {
		errs = append(errs, fmt.Errorf("restart on non-crash failures: %w", err))
	}
	// Each setting on its own: mgr's UpdateConfig would also rewrite (and
	// first read) every other setting, and fail on any one of them.
	if err := windows.ChangeServiceConfig(s.Handle, windows.SERVICE_NO_CHANGE, windows.SERVICE_AUTO_START, windows.SERVICE_NO_CHANGE,
		nil, nil, nil, nil, nil, nil, nil); err != nil {
		errs = append(errs, fmt.Errorf("automatic start: %w", err))
	}
	delayed := windows.SERVICE_DELAYED_AUTO_START_INFO{IsDelayedAutoStartUp: 1}
	if err := windows.ChangeServiceConfig2(s.Handle, windows.SERVICE_CONFIG_DELAYED_AUTO_START_INFO, (*byte)(unsafe.Pointer(&delayed))); err != nil {
		errs = append(errs, fmt.Errorf("delayed automatic start: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("configure service %s: %w", name, err)
	}
	return nil
}

// afterServiceUninstall: nothing lives beside the service's registration.
func afterServiceUninstall(string) error { return nil }

func serviceControl(string, string) (bool, error) { return false, nil }

// runAsService calls svc.Run first: kardianos's session-based guess of
// "interactive" is wrong in containers and under Wine, while svc.Run
// failing with ERROR_FAILED_SERVICE_CONTROLLER_CONNECT is certain.
func runAsService(name string, run func(context.Context) error) (bool, error) {
	h := &serviceHandler{run: run}
	err := svc.Run(name, h)
	if errors.Is(err, windows.ERROR_FAILED_SERVICE_CONTROLLER_CONNECT) {
		return false, nil
	}
	if err != nil {
		return true, fmt.Errorf("run as service %s: %w", name, err)
	}
	return true, h.err
}

// serviceHandler answers the service manager while run runs.
type serviceHandler struct {
	run func(context.Context) error
	err error
}

// Execute runs the service. A run that ends by itself is reported with
// exit code 1, so the recovery actions restart it.
func (h *serviceHandler) Execute(_ []string, req <-chan svc.ChangeRequest, st chan<- svc.Status) (bool, uint32) {
	st <- svc.Status{State: svc.StartPending}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.run(ctx) }()
	const accepts = svc.AcceptStop | svc.AcceptShutdown
	st <- svc.Status{State: svc.Running, Accepts: accepts}
	for {
		select {
		case h.err = <-done:
			return true, 1
		case c := <-req:
			switch c.Cmd {
			case svc.Interrogate:
				st <- c.CurrentStatus
			case svc.Stop, svc.Shutdown:
				cancel()
				// Draining can take minutes: keep telling the manager.
				tick := time.NewTicker(5 * time.Second)
				defer tick.Stop()
				for cp := uint32(1); ; cp++ {
					st <- svc.Status{State: svc.StopPending, CheckPoint: cp, WaitHint: 10000}
					select {
					case h.err = <-done:
						if h.err != nil {
							return true, 1
						}
						return false, 0
					case <-tick.C:
					}
				}
			}
		}
	}
}

// stopServiceAndWait asks the service to stop, waits for "stopped", then
// for the process that ran it to exit, all within timeout. A service that
// does not exist or is already stopped is done.
func stopServiceAndWait(name string, timeout time.Duration) (bool, error) {
	deadline := time.Now().Add(timeout)
	m, err := mgr.Connect()
	if err != nil {
		return true, fmt.Errorf("stop service %s: connect to the service manager: %w", name, err)
	}
	defer m.Disconnect()
	s, err := m.OpenService(name)
	if errors.Is(err, windows.ERROR_SERVICE_DOES_NOT_EXIST) {
		return true, nil
	}
	if err != nil {
		return true, fmt.Errorf("stop service %s: %w", name, err)
	}
	defer s.Close()
	st, err := s.Query()
	if err != nil {
		return true, fmt.Errorf("stop service %s: query: %w", name, err)
	}
	pid := st.ProcessId
	if st.State != svc.Stopped && st.State != svc.StopPending {
		if _, err := s.Control(svc.Stop); err != nil && !errors.Is(err, windows.ERROR_SERVICE_NOT_ACTIVE) {
			return true, fmt.Errorf("stop service %s: %w", name, err)
		}
	}
	for st.State != svc.Stopped {
		if time.Now().After(deadline) {
			return true, fmt.Errorf("stop service %s: still %d after %v", name, st.State, timeout)
		}
		time.Sleep(200 * time.Millisecond)
		if st, err = s.Query(); err != nil {
			return true, fmt.Errorf("stop service %s: query: %w", name, err)
		}
	}
	if pid == 0 {
		return true, nil
	}
	h, err := windows.OpenProcess(windows.SYNCHRONIZE, false, pid)
	if err != nil {
		return true, nil // gone already
	}
	defer windows.CloseHandle(h)
	wait := time.Until(deadline)
	if wait < 0 {
		wait = 0
	}
	ev, err := windows.WaitForSingleObject(h, uint32(wait.Milliseconds()))
	if err != nil {
		return true, fmt.Errorf("stop service %s: wait for process %d: %w", name, pid, err)
	}
	if ev != windows.WAIT_OBJECT_0 {
		return true, fmt.Errorf("stop service %s: process %d still running after %v", name, pid, timeout)
	}
	return true, nil
}
