package platform

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func ownerOf(t *testing.T, p string) uint32 {
	t.Helper()
	info, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return info.Sys().(*syscall.Stat_t).Uid
}

// Own gives the task what is in its directory and nothing else: not what
// a symbolic link there points to, nor a file outside that a hard link
// there shares (a task can plant either in a cache for the next task).
func TestTaskUserOwnTakesNoLinkOutside(t *testing.T) {
	needRoot(t)
	u, err := NewTaskUser(t.Name(), TaskUserIDs{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = u.KillProcesses(); _ = u.Remove() }()
	base := testTempDir(t)
	outside := filepath.Join(base, "outside")
	dir := filepath.Join(base, "task")
	for _, d := range []string{filepath.Join(outside, "d"), filepath.Join(dir, "cache", "sub")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"outside/f": "", "outside/d/f": "", "outside/hard": "",
		"task/cache/sub/f": "", "task/cache/pair1": "",
	}
	for f := range files {
		if err := os.WriteFile(filepath.Join(base, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range [][2]string{{"outside/f", "task/cache/l"}, {"outside/d", "task/cache/ld"}} {
		if err := os.Symlink(filepath.Join(base, l[0]), filepath.Join(base, l[1])); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range [][2]string{{"outside/hard", "task/cache/hard"}, {"task/cache/pair1", "task/cache/sub/pair2"}} {
		if err := os.Link(filepath.Join(base, l[0]), filepath.Join(base, l[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := u.Own(dir); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"outside/f", "outside/d", "outside/d/f", "outside/hard", "task/cache/hard"} {
		if uid := ownerOf(t, filepath.Join(base, p)); uid != 0 {
			t.Errorf("%s went to uid %d; it is not the task's to have", p, uid)
		}
	}
	for _, p := range []string{"task", "task/cache", "task/cache/sub/f", "task/cache/l", "task/cache/ld", "task/cache/pair1", "task/cache/sub/pair2"} {
		if uid := ownerOf(t, filepath.Join(base, p)); uid != u.sys.uid {
			t.Errorf("%s is uid %d's, want the task user's %d", p, uid, u.sys.uid)
		}
	}
}
