package main

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPrintedEnvDrivesTheProvisionerCLI starts `devstack serve`, loads
// exactly the NAME=value lines it prints (as docs/devstack.md tells a new
// user to) and runs the provisioner CLI with nothing else: the names
// devstack prints must be the ones the CLI reads.
func TestPrintedEnvDrivesTheProvisionerCLI(t *testing.T) {
	dir := t.TempDir()
	devstackBin, provisionerBin := filepath.Join(dir, "devstack"), filepath.Join(dir, "provisioner")
	for bin, pkg := range map[string]string{devstackBin: ".", provisionerBin: "../provisioner"} {
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", pkg, err, out)
		}
	}
	serve := exec.Command(devstackBin, "serve", "--listen", "127.0.0.1:0")
	stdout, err := serve.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	serve.Stderr = io.Discard
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = serve.Process.Kill(); _ = serve.Wait() })

	var env []string
	scanner := bufio.NewScanner(stdout)
	for len(env) < 5 && scanner.Scan() {
		line := scanner.Text()
		if !strings.Contains(line, "=") {
			t.Fatalf("devstack serve printed %q on stdout, not a NAME=value line", line)
		}
		env = append(env, line)
	}
	if len(env) < 5 {
		t.Fatalf("devstack serve printed %d variables, want 5: %v", len(env), env)
	}
	cli := exec.Command(provisionerBin, "pools", "list")
	cli.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}, env...)
	out, err := cli.CombinedOutput()
	if err != nil {
		t.Fatalf("provisioner pools list with only devstack's variables: %v\n%s", err, out)
	}
}
