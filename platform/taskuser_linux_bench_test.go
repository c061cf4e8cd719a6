package platform

import (
	"os"
	"os/exec"
	"testing"
)

// BenchmarkTaskUserLife is what per-task mode adds to every task: create
// the account, give it an empty task directory, run `true` as it, kill
// its processes and remove it.
func BenchmarkTaskUserLife(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("task users are made with useradd and need root")
	}
	dir := testTempDir(b)
	for b.Loop() {
		u, err := NewTaskUser(dir, TaskUserIDs{})
		if err != nil {
			b.Fatal(err)
		}
		if err := u.Own(dir); err != nil {
			b.Fatal(err)
		}
		cmd := exec.Command("/bin/true")
		if err := u.RunAs(cmd); err != nil {
			b.Fatal(err)
		}
		if err := cmd.Run(); err != nil {
			b.Fatal(err)
		}
		if _, err := u.KillProcesses(); err != nil {
			b.Fatal(err)
		}
		if err := u.Remove(); err != nil {
			b.Fatal(err)
		}
	}
}
