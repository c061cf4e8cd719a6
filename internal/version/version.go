// Package version says which build of labrunner a binary is: the release
// version stamped by `make build` / `make cross` from `git describe`, the
// commit and the build date. A binary built without the stamp (plain
// `go build` or `go install`) still reports the commit and its time from
// the VCS information the Go toolchain records, and the version "dev".
package version

import (
	"runtime"
	"runtime/debug"
	"strings"
)

// Set at build time with
// -ldflags "-X github.com/labrunner/labrunner/internal/version.version=… -X …commit=… -X …date=…"
// (see the Makefile's LDFLAGS).
var (
	version = ""
	commit  = ""
	date    = ""
)

// Info describes one build.
type Info struct {
	// Version is the release version (`git describe --tags`), or "dev".
	Version string `json:"version"`
	// Commit is the full commit hash the binary was built from, with a
	// "-dirty" suffix when the work tree had changes; empty when unknown.
	Commit string `json:"commit,omitempty"`
	// Date is when the binary was built (stamped builds) or when its commit
	// was made (unstamped builds), RFC 3339; empty when unknown.
	Date string `json:"date,omitempty"`
	// Go is the Go toolchain that built it.
	Go string `json:"go"`
	// Platform is GOOS/GOARCH.
	Platform string `json:"platform"`
}

// Get returns this binary's build information.
func Get() Info {
	return resolve(version, commit, date, readBuildInfo)
}

// String is the short form for --version and logs: "1.4.0 (abc1234, 2026-12-07T10:00:00Z)".
func String() string {
	return Get().String()
}

// String renders i as "version (commit, date)", leaving out what is unknown.
func (i Info) String() string {
	var extra []string
	if i.Commit != "" {
		c := i.Commit
		if len(c) > 12 && !strings.HasSuffix(c, "-dirty") {
			c = c[:12]
		} else if base, ok := strings.CutSuffix(c, "-dirty"); ok && len(base) > 12 {
			c = base[:12] + "-dirty"
		}
		extra = append(extra, c)
	}
	if i.Date != "" {
		extra = append(extra, i.Date)
	}
	if len(extra) == 0 {
		return i.Version
	}
	return i.Version + " (" + strings.Join(extra, ", ") + ")"
}

func readBuildInfo() (map[string]string, bool) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return nil, false
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	return settings, true
}

// resolve fills what the linker stamp left empty from the toolchain's VCS
// settings (vcs.revision, vcs.time, vcs.modified).
func resolve(v, c, d string, buildInfo func() (map[string]string, bool)) Info {
	i := Info{Version: v, Commit: c, Date: d, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if i.Version == "" {
		i.Version = "dev"
	}
	if i.Commit != "" && i.Date != "" {
		return i
	}
	settings, ok := buildInfo()
	if !ok {
		return i
	}
	if i.Commit == "" && settings["vcs.revision"] != "" {
		i.Commit = settings["vcs.revision"]
		if settings["vcs.modified"] == "true" {
			i.Commit += "-dirty"
		}
	}
	if i.Date == "" {
		i.Date = settings["vcs.time"]
	}
	return i
}
