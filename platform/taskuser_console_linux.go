package platform

// The console's user on Linux: the account of seat0's active session
// (systemd-logind, through loginctl), or the one configured, with the
// variables that put a command in that graphical session: its
// XDG_RUNTIME_DIR, DISPLAY (X11), WAYLAND_DISPLAY and session bus.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Where the session's sockets are; variables so that tests can point
// elsewhere.
var (
	runtimeDirRoot = "/run/user"
	x11SocketDir   = "/tmp/.X11-unix"
)

func consoleUser(name string) (*TaskUser, error) {
	display := ""
	if name == "" {
		var err error
		if name, display, err = activeSeatSession(); err != nil {
			return nil, fmt.Errorf("%w; log a user in at the console (autologin) or name it with consoleUser", err)
		}
	}
	u, err := lookupTaskUser(name)
	if err != nil {
		return nil, err
	}
	acct, err := user.Lookup(name)
	if err != nil {
		return nil, err
	}
	gids, err := acct.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("groups of %s: %w", name, err)
	}
	for _, g := range gids {
		if id, err := strconv.ParseUint(g, 10, 32); err == nil {
			u.sys.groups = append(u.sys.groups, uint32(id))
		}
	}
	u.sys.env = consoleSessionEnv(u.sys.uid, display)
	return u, nil
}

// activeSeatSession is the user and X display of seat0's active session.
func activeSeatSession() (name, display string, err error) {
	id, err := loginctl("show-seat", "seat0", "--property=ActiveSession", "--value")
	if err != nil {
		return "", "", err
	}
	if id == "" {
		return "", "", fmt.Errorf("no session is active on seat0")
	}
	out, err := loginctl("show-session", id, "--property=Name", "--property=Display")
	if err != nil {
		return "", "", err
	}
	for line := range strings.Lines(out) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), "=")
		switch k {
		case "Name":
			name = v
		case "Display":
			display = v
		}
	}
	if name == "" {
		return "", "", fmt.Errorf("session %s on seat0 has no user", id)
	}
	return name, display, nil
}

func loginctl(args ...string) (string, error) {
	var out, errOut bytes.Buffer
	cmd := exec.Command("loginctl", args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("loginctl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errOut.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

// consoleSessionEnv is what a command needs to reach the graphical session
// of the account uid: its runtime directory with the Wayland and session
// bus sockets found there, and the X display (the session's, else the
// first X server socket).
func consoleSessionEnv(uid uint32, display string) []string {
	var env []string
	rt := filepath.Join(runtimeDirRoot, strconv.FormatUint(uint64(uid), 10))
	if fi, err := os.Stat(rt); err == nil && fi.IsDir() {
		env = append(env, "XDG_RUNTIME_DIR="+rt)
		if socks, _ := filepath.Glob(filepath.Join(rt, "wayland-*")); len(socks) > 0 {
			sort.Strings(socks)
			for _, s := range socks {
				if !strings.HasSuffix(s, ".lock") {
					env = append(env, "WAYLAND_DISPLAY="+filepath.Base(s))
					break
				}
			}
		}
		if _, err := os.Stat(filepath.Join(rt, "bus")); err == nil {
			env = append(env, "DBUS_SESSION_BUS_ADDRESS=unix:path="+filepath.Join(rt, "bus"))
		}
	}
	if display == "" {
		if socks, _ := filepath.Glob(filepath.Join(x11SocketDir, "X*")); len(socks) > 0 {
			sort.Strings(socks)
			display = ":" + strings.TrimPrefix(filepath.Base(socks[0]), "X")
		}
	}
	if display != "" {
		env = append(env, "DISPLAY="+display)
	}
	return env
}
