package platform

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"unsafe"

	"golang.org/x/sys/windows"
)

// fileRenameInformation is FILE_RENAME_INFORMATION with room for one
// path element (wdm.h).
type fileRenameInformation struct {
	Flags          uint32
	RootDirectory  windows.Handle
	FileNameLength uint32
	FileName       [windows.MAX_PATH]uint16
}

// fileBasicInfo is FILE_BASIC_INFO (winbase.h); zero times are left as
// they are.
type fileBasicInfo struct {
	CreationTime, LastAccessTime, LastWriteTime, ChangeTime int64
	FileAttributes                                          uint32
	_                                                       uint32
}

// fileDispositionInfo is FILE_DISPOSITION_INFO (winbase.h).
type fileDispositionInfo struct {
	DeleteFile bool
}

// renameAt opens fromName relative to fromDir's handle with
// FILE_OPEN_REPARSE_POINT (a symbolic link, junction or mount point is
// opened itself, never followed) and renames that handle to toName
// relative to toDir's handle (FileRenameInformation with a
// RootDirectory), refusing to replace an existing entry.
func renameAt(fromDir *os.File, fromName string, toDir *os.File, toName string) error {
	h, err := openEntry(fromDir, fromName, windows.DELETE)
	if err != nil {
		return err
	}
	defer windows.CloseHandle(h)
	p16, err := windows.UTF16FromString(toName)
	if err != nil {
		return err
	}
	info := fileRenameInformation{RootDirectory: windows.Handle(toDir.Fd())}
	if len(p16) > len(info.FileName) {
		return windows.ERROR_FILENAME_EXCED_RANGE
	}
	copy(info.FileName[:], p16)
	info.FileNameLength = uint32((len(p16) - 1) * 2)
	err = windows.NtSetInformationFile(h, &windows.IO_STATUS_BLOCK{}, (*byte)(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info)), windows.FileRenameInformation)
	runtime.KeepAlive(toDir)
	if errors.Is(err, windows.STATUS_NOT_SAME_DEVICE) {
		return fmt.Errorf("%w: %w", ErrCrossDevice, ntError(err))
	}
	return ntError(err)
}

// ntError turns an NTSTATUS into the Win32 error the rest of Go knows
// (os.IsNotExist, fs.ErrExist).
func ntError(err error) error {
	var st windows.NTStatus
	if errors.As(err, &st) {
		return st.Errno()
	}
	return err
}

// removeAt marks the entry, opened itself (FILE_OPEN_REPARSE_POINT), for
// deletion with FileDispositionInfo, which Wine supports too (os.Root's
// removal uses FileDispositionInformationEx, which Wine 8 lacks); a
// read-only file loses that attribute first.
func removeAt(dir *os.File, name string) error {
	h, err := openEntry(dir, name, windows.DELETE|windows.FILE_READ_ATTRIBUTES|windows.FILE_WRITE_ATTRIBUTES)
	if err != nil {
		return err
	}
	defer windows.CloseHandle(h)
	var fi windows.ByHandleFileInformation
	if err := windows.GetFileInformationByHandle(h, &fi); err != nil {
		return err
	}
	if fi.FileAttributes&windows.FILE_ATTRIBUTE_READONLY != 0 {
		basic := fileBasicInfo{FileAttributes: fi.FileAttributes &^ windows.FILE_ATTRIBUTE_READONLY}
		if err := windows.SetFileInformationByHandle(h, windows.FileBasicInfo, (*byte)(unsafe.Pointer(&basic)), uint32(unsafe.Sizeof(basic))); err != nil {
			return err
		}
	}
	del := fileDispositionInfo{DeleteFile: true}
	return windows.SetFileInformationByHandle(h, windows.FileDispositionInfo, (*byte)(unsafe.Pointer(&del)), uint32(unsafe.Sizeof(del)))
}

// openEntry opens the entry name of dir itself, with access besides
// SYNCHRONIZE: a symbolic link, junction or mount point is opened as it is
// (FILE_OPEN_REPARSE_POINT), never followed. A name with a colon (a
// stream, a drive) is refused.
func openEntry(dir *os.File, name string, access uint32) (windows.Handle, error) {
	if strings.ContainsRune(name, ':') {
		return 0, fmt.Errorf("%q names a stream or a drive, not an entry", name)
	}
	objName, err := windows.NewNTUnicodeString(name)
	if err != nil {
		return 0, err
	}
	oa := &windows.OBJECT_ATTRIBUTES{
		RootDirectory: windows.Handle(dir.Fd()),
		ObjectName:    objName,
		Attributes:    windows.OBJ_CASE_INSENSITIVE,
	}
	oa.Length = uint32(unsafe.Sizeof(*oa))
	var h windows.Handle
	err = windows.NtCreateFile(&h, access|windows.SYNCHRONIZE, oa, &windows.IO_STATUS_BLOCK{}, nil, 0,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE|windows.FILE_SHARE_DELETE, windows.FILE_OPEN,
		windows.FILE_OPEN_REPARSE_POINT|windows.FILE_OPEN_FOR_BACKUP_INTENT|windows.FILE_SYNCHRONOUS_IO_NONALERT, 0, 0)
	runtime.KeepAlive(dir)
	if err != nil {
		return 0, ntError(err)
	}
	return h, nil
}
