package mounts

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"

	"golang.org/x/sys/windows"
)

// junction makes path a directory junction (mount point) to target, as
// any account can without privilege (what `mklink /J` does), or says why
// it cannot here (Wine 8 has no FSCTL_SET_REPARSE_POINT).
func junction(target, path string) error {
	if err := os.Mkdir(path, 0o755); err != nil {
		return err
	}
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return err
	}
	h, err := windows.CreateFile(p, windows.GENERIC_WRITE, 0, nil, windows.OPEN_EXISTING, windows.FILE_FLAG_BACKUP_SEMANTICS|windows.FILE_FLAG_OPEN_REPARSE_POINT, 0)
	if err != nil {
		return err
	}
	defer windows.CloseHandle(h)
	// REPARSE_DATA_BUFFER with a MountPointReparseBuffer: the substitute
	// name (NT path) then the print name, each NUL-terminated.
	sub := utf16.Encode([]rune(`\??\` + target))
	prn := utf16.Encode([]rune(target))
	data := make([]byte, 8, 8+2*(len(sub)+len(prn)+2))
	binary.LittleEndian.PutUint16(data[0:], 0)
	binary.LittleEndian.PutUint16(data[2:], uint16(2*len(sub)))
	binary.LittleEndian.PutUint16(data[4:], uint16(2*(len(sub)+1)))
	binary.LittleEndian.PutUint16(data[6:], uint16(2*len(prn)))
	for _, c := range append(append(sub, 0), append(prn, 0)...) {
		data = binary.LittleEndian.AppendUint16(data, c)
	}
	buf := binary.LittleEndian.AppendUint32(nil, windows.IO_REPARSE_TAG_MOUNT_POINT)
	buf = binary.LittleEndian.AppendUint16(buf, uint16(len(data)))
	buf = append(buf, 0, 0)
	buf = append(buf, data...)
	var n uint32
	if err := windows.DeviceIoControl(h, windows.FSCTL_SET_REPARSE_POINT, &buf[0], uint32(len(buf)), nil, 0, &n, nil); err != nil {
		return fmt.Errorf("cannot make a junction here: %w", err)
	}
	return nil
}

func junctionTo(t *testing.T, target, path string) {
	t.Helper()
	if err := os.Rename(path, path+".old"); err != nil {
		t.Fatal(err)
	}
	if err := junction(target, path); err != nil {
		t.Skip(err)
	}
}

func TestUnmountThroughAJunctionLeavesTheOutsideAlone(t *testing.T) {
	testUnmountThroughALink(t, junctionTo)
}

// A junction a task left in a cache is not written through by a later
// mount.
func TestMountRefusesPathsThroughAJunction(t *testing.T) {
	base := tempDir(t)
	outside := filepath.Join(base, "outside")
	_ = os.Mkdir(outside, 0o755)
	m := newManager(t, base, nil)
	taskDir := filepath.Join(base, "task")
	_ = os.MkdirAll(filepath.Join(taskDir, "cache"), 0o755)
	if err := junction(outside, filepath.Join(taskDir, "cache", "evil")); err != nil {
		t.Skip(err)
	}
	_, _, err := mountAll(t, m, taskDir, []Mount{{Kind: FileMount, Path: "cache/evil/f", Content: &Content{Raw: "x"}}})
	var te *TaskError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "junction") {
		t.Errorf("mount through a junction = %v, want a TaskError about it", err)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("written outside the task directory: %v", ents)
	}
}
