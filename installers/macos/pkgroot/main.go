// Command pkgroot lays out the macOS pkg's payload: the universal runner
// (a fat Mach-O joined from the darwin/amd64 and darwin/arm64 builds by
// internal/machofat, so no lipo and no Mac are needed) and the
// LaunchDaemon plist, written by the same platform.LaunchdPlist as
// `runner service install` on macOS. installers/macos/build-pkg.sh runs it.
//
//	go run ./installers/macos/pkgroot -out ROOT -amd64 runner-amd64 -arm64 runner-arm64
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/labrunner/labrunner/internal/machofat"
	"github.com/labrunner/labrunner/platform"
)

// Where the pkg puts things; the scripts and docs/install-macos.md say the same.
const (
	label      = "org.labrunner.runner" // the runner's launchd Label on macOS (platform.ServiceName there)
	runnerPath = "/usr/local/labrunner/runner"
	configPath = "/Library/Application Support/labrunner/runner.yml"
)

func main() {
	out := flag.String("out", "", "payload root directory to create")
	amd64 := flag.String("amd64", "", "the darwin/amd64 runner")
	arm64 := flag.String("arm64", "", "the darwin/arm64 runner")
	flag.Parse()
	if *out == "" || *amd64 == "" || *arm64 == "" {
		fmt.Fprintln(os.Stderr, "usage: pkgroot -out ROOT -amd64 FILE -arm64 FILE")
		os.Exit(2)
	}
	if err := layout(*out, *amd64, *arm64); err != nil {
		fmt.Fprintln(os.Stderr, "pkgroot:", err)
		os.Exit(1)
	}
}

func layout(root, amd64, arm64 string) error {
	var slices [][]byte
	for _, p := range []string{amd64, arm64} {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		slices = append(slices, b)
	}
	var fat bytes.Buffer
	if err := machofat.Write(&fat, slices...); err != nil {
		return err
	}
	plist := platform.LaunchdPlist(label, runnerPath, platform.ServiceArgs(configPath))
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{
		{runnerPath, fat.Bytes(), 0o755},
		{filepath.Join(platform.LaunchDaemonsDir, label+".plist"), plist, 0o644},
	} {
		p := filepath.Join(root, filepath.FromSlash(f.path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.data, f.mode); err != nil {
			return err
		}
		// Explicit, whatever the umask: the payload's modes are the installed ones.
		if err := os.Chmod(p, f.mode); err != nil {
			return err
		}
	}
	return filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.IsDir() {
			err = os.Chmod(p, 0o755)
		}
		return err
	})
}
