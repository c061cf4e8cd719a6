//go:build linux || darwin

package platform

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fixedIDChecks answers from a fixed set of traced ids and of ids a
// directory service knows.
func fixedIDChecks(traced []uint32, known ...uint32) idChecks {
	return idChecks{
		traces: func(r TaskUserIDs) (map[uint32]bool, error) {
			ids := map[uint32]bool{}
			addIDsIn(ids, r, traced...)
			return ids, nil
		},
		free: func(id uint32) (bool, error) { return !slices.Contains(known, id), nil },
	}
}

// Ids are given in turn round the whole range, each once per turn, the
// ids something still carries or a directory service knows skipped; the
// counter survives the process (it is a file).
func TestTaskIDsGoRoundTheRange(t *testing.T) {
	file := filepath.Join(testTempDir(t), "state", "task-user-ids")
	r := TaskUserIDs{First: 71000, Last: 71004}
	checks := fixedIDChecks([]uint32{71002}, 71003)
	var got []uint32
	for range 6 {
		id, err := allocateTaskIDIn(file, r, checks, func(uint32) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, id)
	}
	if want := []uint32{71000, 71001, 71004, 71000, 71001, 71004}; !slices.Equal(got, want) {
		t.Errorf("ids given: %v, want %v", got, want)
	}
	if b, err := os.ReadFile(file); err != nil || strings.TrimSpace(string(b)) != "71000" {
		t.Errorf("the counter file holds %q, %v; want the next id to try, 71000", b, err)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the counter file: %v, %v; want mode 0600", fi, err)
	}
}

// An id whose account could not be made is not tried again at once (the
// counter moved before the account was made), and the failure is the
// caller's error.
func TestTaskIDCountedBeforeTheAccount(t *testing.T) {
	file := filepath.Join(testTempDir(t), "task-user-ids")
	r := TaskUserIDs{First: 71000, Last: 71999}
	boom := errors.New("useradd failed")
	if _, err := allocateTaskIDIn(file, r, fixedIDChecks(nil), func(uint32) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("a failed creation gave %v, want its error", err)
	}
	id, err := allocateTaskIDIn(file, r, fixedIDChecks(nil), func(uint32) error { return nil })
	if err != nil || id != 71001 {
		t.Errorf("after a failed creation of 71000: %d, %v; want 71001", id, err)
	}
}

// A counter file that is damaged, or from another range, starts the range
// again; a range with every id carried is an error naming the setting.
func TestTaskIDCounterDamagedOrFull(t *testing.T) {
	file := filepath.Join(testTempDir(t), "task-user-ids")
	r := TaskUserIDs{First: 71000, Last: 71002}
	for _, content := range []string{"garbage\n", "5000\n", ""} {
		if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if id, err := allocateTaskIDIn(file, r, fixedIDChecks(nil), func(uint32) error { return nil }); err != nil || id != 71000 {
			t.Errorf("counter %q: %d, %v; want the range's first id", content, id, err)
		}
	}
	_, err := allocateTaskIDIn(file, r, fixedIDChecks([]uint32{71000, 71001}, 71002), func(uint32) error {
		t.Error("an account was made with no id free")
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "taskUserIds") {
		t.Errorf("a full range gave %v; want an error naming taskUserIds", err)
	}
}

// The ids of files in the shared directories are found by owner and
// group, through directories but not through links.
func TestIDsInSharedDirs(t *testing.T) {
	needRoot(t)
	shared := testTempDir(t)
	outside := testTempDir(t)
	r := TaskUserIDs{First: 71000, Last: 71999}
	mk := func(path string, dir bool, uid, gid int) {
		t.Helper()
		var err error
		if dir {
			err = os.Mkdir(path, 0o755)
		} else {
			err = os.WriteFile(path, nil, 0o644)
		}
		if err == nil {
			err = os.Lchown(path, uid, gid)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	mk(filepath.Join(shared, "f"), false, 71001, 0)
	mk(filepath.Join(shared, "d"), true, 0, 0)
	mk(filepath.Join(shared, "d", "g"), false, 0, 71002)
	mk(filepath.Join(outside, "behind-a-link"), false, 71003, 71003)
	if err := os.Symlink(outside, filepath.Join(shared, "link")); err != nil {
		t.Fatal(err)
	}
	mk(filepath.Join(shared, "far"), false, 80000, 80000)
	got, err := idsInSharedDirs([]string{shared, filepath.Join(shared, "missing")}, r)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[71001] || !got[71002] {
		t.Errorf("ids found: %v; want 71001 (owner) and 71002 (group), nothing behind the link or outside the range", got)
	}
}
