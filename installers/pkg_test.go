package installers

import (
	"bytes"
	"debug/macho"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"howett.net/plist"
)

var (
	pkgOnce sync.Once
	pkgFile string
)

// builtPkg is the pkg `make installers` just built (LABRUNNER_PKG), or one
// built here with installers/build.sh.
func builtPkg(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("LABRUNNER_PKG"); p != "" {
		return p
	}
	pkgOnce.Do(func() {
		out := filepath.Join(artifacts, "pkg")
		run(t, repoRoot(t), []string{"VERSION=1.2.3", "OUT=" + out}, "installers/build.sh", "pkg")
		pkgFile = filepath.Join(out, "labrunner-1.2.3.pkg")
	})
	if pkgFile == "" {
		t.Fatal("the pkg was not built (see the first test that tried)")
	}
	return pkgFile
}

const (
	pkgRunner = "usr/local/labrunner/runner"
	pkgPlist  = "Library/LaunchDaemons/org.labrunner.runner.plist"
)

// TestPkgReadsBack opens the unsigned pkg as Installer would (xar, TOC and
// per-file checksums, PackageInfo, cpio Payload and Scripts) and checks
// what makes it install: root-owned entries with the right modes, a
// universal runner, a LaunchDaemon plist launchd accepts, scripts that
// parse and pass shellcheck.
func TestPkgReadsBack(t *testing.T) {
	b, err := os.ReadFile(builtPkg(t))
	if err != nil {
		t.Fatal(err)
	}
	files, err := readXar(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"PackageInfo", "Payload", "Scripts"} {
		if files[name] == nil {
			t.Fatalf("the pkg has no %s (has %v)", name, keys(files))
		}
	}
	payload, err := readCpioGz(files["Payload"])
	if err != nil {
		t.Fatalf("Payload: %v", err)
	}
	scripts, err := readCpioGz(files["Scripts"])
	if err != nil {
		t.Fatalf("Scripts: %v", err)
	}

	var info struct {
		Identifier      string `xml:"identifier,attr"`
		Version         string `xml:"version,attr"`
		InstallLocation string `xml:"install-location,attr"`
		Auth            string `xml:"auth,attr"`
		Payload         struct {
			Files int `xml:"numberOfFiles,attr"`
		} `xml:"payload"`
		Pre struct {
			File string `xml:"file,attr"`
		} `xml:"scripts>preinstall"`
		Post struct {
			File string `xml:"file,attr"`
		} `xml:"scripts>postinstall"`
	}
	if err := xml.Unmarshal(files["PackageInfo"], &info); err != nil {
		t.Fatalf("PackageInfo: %v", err)
	}
	if info.Identifier != "org.labrunner.runner" || info.InstallLocation != "/" || info.Auth != "root" || info.Version == "" ||
		info.Payload.Files != len(payload) || info.Pre.File != "./preinstall" || info.Post.File != "./postinstall" {
		t.Errorf("PackageInfo %+v; want org.labrunner.runner at / as root, %d files, both scripts", info, len(payload))
	}

	byName := map[string]cpioEntry{}
	for _, e := range append(payload, scripts...) {
		if e.UID != 0 || e.GID != 0 {
			t.Errorf("%s is owned by %d:%d, want 0:0 (root:wheel)", e.Name, e.UID, e.GID)
		}
		if e.Mode&0o170000 == 0o040000 && e.Mode&0o7777 != 0o755 {
			t.Errorf("directory %s has mode %o, want 755", e.Name, e.Mode&0o7777)
		}
		byName[strings.TrimPrefix(e.Name, "./")] = e
	}
	for name, mode := range map[string]uint32{pkgRunner: 0o100755, pkgPlist: 0o100644, "preinstall": 0o100755, "postinstall": 0o100755} {
		if e, ok := byName[name]; !ok || e.Mode != mode {
			t.Errorf("%s: mode %o (present %v), want %o", name, e.Mode, ok, mode)
		}
	}

	fat, err := macho.NewFatFile(bytes.NewReader(byName[pkgRunner].Data))
	if err != nil {
		t.Fatalf("%s is not a universal Mach-O: %v", pkgRunner, err)
	}
	if len(fat.Arches) != 2 || fat.Arches[0].Cpu != macho.CpuAmd64 || fat.Arches[1].Cpu != macho.CpuArm64 {
		t.Errorf("%s slices %+v, want amd64 and arm64", pkgRunner, fat.Arches)
	}

	var job struct {
		Label             string
		ProgramArguments  []string
		RunAtLoad         bool
		KeepAlive         bool
		StandardErrorPath string
	}
	if _, err := plist.Unmarshal(byName[pkgPlist].Data, &job); err != nil {
		t.Fatalf("the LaunchDaemon plist does not parse: %v", err)
	}
	wantArgs := []string{"/" + pkgRunner, "run", "--wait-for-config", "--config", "/Library/Application Support/labrunner/runner.yml"}
	if job.Label != "org.labrunner.runner" || !job.RunAtLoad || !job.KeepAlive || strings.Join(job.ProgramArguments, "|") != strings.Join(wantArgs, "|") || job.StandardErrorPath == "" {
		t.Errorf("LaunchDaemon %+v; want Label org.labrunner.runner running %v at load, kept alive, logging", job, wantArgs)
	}

	dir := t.TempDir()
	for _, s := range []string{"preinstall", "postinstall"} {
		p := filepath.Join(dir, s)
		if err := os.WriteFile(p, byName[s].Data, 0o755); err != nil {
			t.Fatal(err)
		}
		run(t, "", nil, "sh", "-n", p)
		run(t, "", nil, "shellcheck", "-s", "sh", p)
	}
	post := string(byName["postinstall"].Data)
	for _, want := range []string{"runner=/" + pkgRunner, "label=org.labrunner.runner", `"$runner" enroll`, "launchctl bootstrap system", "/Library/Managed Preferences/$label"} {
		if !strings.Contains(post, want) {
			t.Errorf("postinstall lacks %q", want)
		}
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
