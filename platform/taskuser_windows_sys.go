//go:build windows

package platform

// The Win32 calls of task users that golang.org/x/sys/windows does not
// wrap: local accounts and groups (netapi32), logon and profiles
// (advapi32, userenv), the runner's window station and desktop (user32).
// generic-worker's workers/generic-worker/win32 package (v44.23.4) calls
// the same functions.

import (
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/windows"
)

var (
	modNetapi32 = windows.NewLazySystemDLL("netapi32.dll")
	modUserenv  = windows.NewLazySystemDLL("userenv.dll")
	modAdvapi32 = windows.NewLazySystemDLL("advapi32.dll")
	modUser32   = windows.NewLazySystemDLL("user32.dll")

	procNetUserAdd              = modNetapi32.NewProc("NetUserAdd")
	procNetUserDel              = modNetapi32.NewProc("NetUserDel")
	procNetLocalGroupAddMembers = modNetapi32.NewProc("NetLocalGroupAddMembers")
	procNetLocalGroupDelMembers = modNetapi32.NewProc("NetLocalGroupDelMembers")
	procLogonUserW              = modAdvapi32.NewProc("LogonUserW")
	procLoadUserProfileW        = modUserenv.NewProc("LoadUserProfileW")
	procUnloadUserProfile       = modUserenv.NewProc("UnloadUserProfile")
	procDeleteProfileW          = modUserenv.NewProc("DeleteProfileW")
	procGetProcessWindowStation = modUser32.NewProc("GetProcessWindowStation")
	procGetThreadDesktop        = modUser32.NewProc("GetThreadDesktop")
)

// userInfo1 is USER_INFO_1 (lmaccess.h).
type userInfo1 struct {
	Name        *uint16
	Password    *uint16
	PasswordAge uint32
	Priv        uint32
	HomeDir     *uint16
	Comment     *uint16
	Flags       uint32
	ScriptPath  *uint16
}

// localGroupMembersInfo3 is LOCALGROUP_MEMBERS_INFO_3.
type localGroupMembersInfo3 struct {
	DomainAndName *uint16
}

// profileInfo is PROFILEINFOW (profinfo.h).
type profileInfo struct {
	Size        uint32
	Flags       uint32
	UserName    *uint16
	ProfilePath *uint16
	DefaultPath *uint16
	ServerName  *uint16
	PolicyPath  *uint16
	Profile     windows.Handle
}

const (
	userPrivUser       = 1      // USER_PRIV_USER: no administrator, no guest
	ufScript           = 0x0001 // UF_SCRIPT, required by NetUserAdd
	ufPasswdCantChange = 0x0040
	ufDontExpirePasswd = 0x10000
	filterNormalAcct   = 0x0002 // FILTER_NORMAL_ACCOUNT
	logon32Interactive = 2      // LOGON32_LOGON_INTERACTIVE
	logon32ProviderDef = 0      // LOGON32_PROVIDER_DEFAULT
	piNoUI             = 1      // PI_NOUI

	nerrUserExists     syscall.Errno = 2224
	nerrUserNotFound   syscall.Errno = 2221
	errNoSuchAlias     syscall.Errno = 1376 // the local group does not exist
	errMemberInAlias   syscall.Errno = 1378
	errMemberNotAlias  syscall.Errno = 1377
	errMoreData        syscall.Errno = 234
	netapiBufferMaxLen               = 0xFFFFFFFF // MAX_PREFERRED_LENGTH
)

// netStatus turns a NET_API_STATUS into an error (nil for NERR_Success).
func netStatus(call string, r uintptr) error {
	if r == 0 {
		return nil
	}
	return fmt.Errorf("%s: %w", call, syscall.Errno(r))
}

func netUserAdd(info *userInfo1) error {
	var parmErr uint32
	r, _, _ := procNetUserAdd.Call(0, 1, uintptr(unsafe.Pointer(info)), uintptr(unsafe.Pointer(&parmErr)))
	if r != 0 && parmErr != 0 {
		return fmt.Errorf("NetUserAdd (parameter %d): %w", parmErr, syscall.Errno(r))
	}
	return netStatus("NetUserAdd", r)
}

func netUserDel(name string) error {
	r, _, _ := procNetUserDel.Call(0, uintptr(unsafe.Pointer(windows.StringToUTF16Ptr(name))))
	return netStatus("NetUserDel", r)
}

// netLocalGroupMember adds (add) or removes account to or from group.
func netLocalGroupMember(group, account string, add bool) error {
	info := localGroupMembersInfo3{DomainAndName: windows.StringToUTF16Ptr(account)}
	proc, call := procNetLocalGroupDelMembers, "NetLocalGroupDelMembers"
	if add {
		proc, call = procNetLocalGroupAddMembers, "NetLocalGroupAddMembers"
	}
	r, _, _ := proc.Call(0, uintptr(unsafe.Pointer(windows.StringToUTF16Ptr(group))), 3, uintptr(unsafe.Pointer(&info)), 1)
	return netStatus(call, r)
}

// netUsers lists the local accounts with their descriptions.
func netUsers() (map[string]string, error) {
	out := map[string]string{}
	var resume uint32
	for {
		var buf *byte
		var read, total uint32
		err := windows.NetUserEnum(nil, 1, filterNormalAcct, &buf, netapiBufferMaxLen, &read, &total, &resume)
		if buf != nil {
			entries := unsafe.Slice((*userInfo1)(unsafe.Pointer(buf)), read)
			for _, e := range entries {
				out[windows.UTF16PtrToString(e.Name)] = windows.UTF16PtrToString(e.Comment)
			}
			windows.NetApiBufferFree(buf)
		}
		if err == errMoreData {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("NetUserEnum: %w", err)
		}
		return out, nil
	}
}

func logonUser(name, password string) (windows.Token, error) {
	var tok windows.Token
	r, _, e := procLogonUserW.Call(
		uintptr(unsafe.Pointer(windows.StringToUTF16Ptr(name))),
		uintptr(unsafe.Pointer(windows.StringToUTF16Ptr("."))),
		uintptr(unsafe.Pointer(windows.StringToUTF16Ptr(password))),
		logon32Interactive, logon32ProviderDef, uintptr(unsafe.Pointer(&tok)))
	if r == 0 {
		return 0, fmt.Errorf("LogonUser: %w", e)
	}
	return tok, nil
}

func loadUserProfile(tok windows.Token, name string) (windows.Handle, error) {
	pi := profileInfo{Flags: piNoUI, UserName: windows.StringToUTF16Ptr(name)}
	pi.Size = uint32(unsafe.Sizeof(pi))
	r, _, e := procLoadUserProfileW.Call(uintptr(tok), uintptr(unsafe.Pointer(&pi)))
	if r == 0 {
		return 0, fmt.Errorf("LoadUserProfile: %w", e)
	}
	return pi.Profile, nil
}

func unloadUserProfile(tok windows.Token, profile windows.Handle) error {
	r, _, e := procUnloadUserProfile.Call(uintptr(tok), uintptr(profile))
	if r == 0 {
		return fmt.Errorf("UnloadUserProfile: %w", e)
	}
	return nil
}

func deleteProfile(sid string) error {
	// Wine (used for tests) has no DeleteProfileW: an error, not a panic.
	if err := procDeleteProfileW.Find(); err != nil {
		return err
	}
	r, _, e := procDeleteProfileW.Call(uintptr(unsafe.Pointer(windows.StringToUTF16Ptr(sid))), 0, 0)
	if r == 0 {
		return fmt.Errorf("DeleteProfile: %w", e)
	}
	return nil
}

// runnerWindowObjects are the window station and desktop the runner's
// processes start on (a service's non-interactive one): a task user's
// processes start there too and need access to them.
func runnerWindowObjects() (winsta, desktop windows.Handle, err error) {
	r, _, e := procGetProcessWindowStation.Call()
	if r == 0 {
		return 0, 0, fmt.Errorf("GetProcessWindowStation: %w", e)
	}
	winsta = windows.Handle(r)
	r, _, e = procGetThreadDesktop.Call(uintptr(windows.GetCurrentThreadId()))
	if r == 0 {
		return 0, 0, fmt.Errorf("GetThreadDesktop: %w", e)
	}
	return winsta, windows.Handle(r), nil
}
