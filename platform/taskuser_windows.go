//go:build windows

package platform

// Windows task users, as generic-worker's multiuser engine makes them
// (workers/generic-worker/runtime/runtime_windows.go and
// process/logininfo_multiuser_windows.go at v44.23.4), without its
// reboot: a local account in Users only (NetUserAdd), logged on
// (LogonUser) with its profile loaded (LoadUserProfile); each command is
// started with that token (os/exec's SysProcAttr.Token, which makes it
// CreateProcessAsUser) and the account's own environment block; the task
// directory's DACL grants it full control; afterwards its processes are
// terminated, the profile unloaded and deleted (DeleteProfile) and the
// account removed (NetUserDel).

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"
)

// taskUserSys is the account's SID, its logon and the token commands
// start with.
type taskUserSys struct {
	sid *windows.SID
	// password is kept in memory only, to log on again after a group
	// change (a token's groups are fixed at logon); it is never logged.
	password string
	// logon is the token of the logon that loaded profile; token is the
	// one commands start with (a later logon's, or the elevated one).
	logon, token windows.Token
	profile      windows.Handle
	// more are the further tokens to close at the end.
	more []windows.Token
	// env are the account's own variables from its environment block.
	env []string
	// winsta and desktop hold the ACE granted to sid on the runner's
	// window station and desktop (0 if none).
	winsta, desktop windows.Handle
}

// userEnvKeys are the variables of the account's environment block that
// replace the runner's: who the account is and where its profile is.
var userEnvKeys = []string{"USERPROFILE", "USERNAME", "USERDOMAIN", "HOMEDRIVE", "HOMEPATH", "APPDATA", "LOCALAPPDATA"}

func canManageTaskUsers() error {
	held, err := privilegeHeld("SeAssignPrimaryTokenPrivilege")
	if err != nil {
		return err
	}
	if !held {
		return errors.New("the runner's account lacks SeAssignPrimaryTokenPrivilege, which starting commands as another account needs; run the runner as its service does (LocalSystem)")
	}
	if err := EnablePrivilege("SeAssignPrimaryTokenPrivilege"); err != nil {
		return err
	}
	if err := EnablePrivilege("SeIncreaseQuotaPrivilege"); err != nil {
		return err
	}
	return nil
}

// privilegeHeld says whether the process token has the privilege, enabled
// or not.
func privilegeHeld(name string) (bool, error) {
	var luid windows.LUID
	if err := windows.LookupPrivilegeValue(nil, windows.StringToUTF16Ptr(name), &luid); err != nil {
		return false, fmt.Errorf("look up %s: %w", name, err)
	}
	tok := windows.GetCurrentProcessToken()
	var n uint32
	_ = windows.GetTokenInformation(tok, windows.TokenPrivileges, nil, 0, &n)
	if n == 0 {
		return false, fmt.Errorf("query %s: token privileges size unknown", name)
	}
	buf := make([]byte, n)
	if err := windows.GetTokenInformation(tok, windows.TokenPrivileges, &buf[0], n, &n); err != nil {
		return false, fmt.Errorf("query %s: token privileges: %w", name, err)
	}
	for _, p := range (*windows.Tokenprivileges)(unsafe.Pointer(&buf[0])).AllPrivileges() {
		if p.Luid == luid {
			return true, nil
		}
	}
	return false, nil
}

// randomWindowsPassword meets any complexity policy: 32 characters with
// upper and lower case letters, digits and symbols.
func randomWindowsPassword() (string, error) {
	const sets = "ABCDEFGHJKLMNPQRSTUVWXYZ" + "abcdefghijkmnopqrstuvwxyz" + "23456789" + "!#%+-.=@_"
	var b strings.Builder
	b.WriteString("Lr7!") // one of each class, whatever follows
	for range 28 {
		i, err := rand.Int(rand.Reader, big.NewInt(int64(len(sets))))
		if err != nil {
			return "", fmt.Errorf("random password: %w", err)
		}
		b.WriteByte(sets[i.Int64()])
	}
	return b.String(), nil
}

// create makes the account; ids are for Unix uids (SIDs are never given
// again).
func (u *TaskUser) create(comment string, _ TaskUserIDs) error {
	pw, err := randomWindowsPassword()
	if err != nil {
		return err
	}
	info := userInfo1{
		Name:     windows.StringToUTF16Ptr(u.Name),
		Password: windows.StringToUTF16Ptr(pw),
		Priv:     userPrivUser,
		Comment:  windows.StringToUTF16Ptr(comment),
		Flags:    ufScript | ufDontExpirePasswd | ufPasswdCantChange,
	}
	if err := netUserAdd(&info); err != nil {
		return err
	}
	u.sys.password = pw
	ok := false
	defer func() {
		if !ok {
			_ = u.remove()
		}
	}()
	sid, _, _, err := windows.LookupSID("", u.Name)
	if err != nil {
		return fmt.Errorf("SID of the new account: %w", err)
	}
	u.sys.sid = sid
	if err := u.logOn(); err != nil {
		return err
	}
	if err := u.grantWindowObjects(); err != nil {
		return err
	}
	ok = true
	return nil
}

// logOn logs the account on, loads its profile (the first time) and reads
// its home and variables.
func (u *TaskUser) logOn() error {
	tok, err := logonUser(u.Name, u.sys.password)
	if err != nil {
		return err
	}
	if u.sys.logon == 0 {
		u.sys.logon = tok
		if u.sys.profile, err = loadUserProfile(tok, u.Name); err != nil {
			return err
		}
	} else {
		u.sys.more = append(u.sys.more, tok)
	}
	u.sys.token = tok
	return u.readProfile(tok)
}

// readProfile fills Home and the account's variables from tok.
func (u *TaskUser) readProfile(tok windows.Token) error {
	home, err := tok.GetUserProfileDirectory()
	if err != nil {
		return fmt.Errorf("profile directory: %w", err)
	}
	env, err := tok.Environ(false)
	if err != nil {
		return fmt.Errorf("environment block: %w", err)
	}
	u.Home, u.sys.env = home, nil
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		for _, k := range userEnvKeys {
			if strings.EqualFold(name, k) {
				u.sys.env = append(u.sys.env, kv)
			}
		}
	}
	return nil
}

// grantWindowObjects lets the account use the runner's window station
// and desktop, without which its processes cannot initialise user32 (as
// generic-worker's GrantSIDWinstaAccess, there for everyone, here for the
// account only and taken back in remove).
func (u *TaskUser) grantWindowObjects() error {
	winsta, desktop, err := runnerWindowObjects()
	if err != nil {
		return err
	}
	if err := grantHandle(winsta, u.sys.sid, windows.SET_ACCESS); err != nil {
		return fmt.Errorf("window station: %w", err)
	}
	u.sys.winsta = winsta
	if err := grantHandle(desktop, u.sys.sid, windows.SET_ACCESS); err != nil {
		return fmt.Errorf("desktop: %w", err)
	}
	u.sys.desktop = desktop
	return nil
}

// windowObjectsMu serialises the read-modify-write of the window
// station's and desktop's DACLs: two tasks at once (capacity 2) would
// otherwise lose one's entry.
var windowObjectsMu sync.Mutex

// grantHandle sets (SET_ACCESS) or takes back (REVOKE_ACCESS) sid's full
// access to a window station or desktop.
func grantHandle(h windows.Handle, sid *windows.SID, mode windows.ACCESS_MODE) error {
	windowObjectsMu.Lock()
	defer windowObjectsMu.Unlock()
	sd, err := windows.GetSecurityInfo(h, windows.SE_WINDOW_OBJECT, windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		return fmt.Errorf("GetSecurityInfo: %w", err)
	}
	old, _, err := sd.DACL()
	if err != nil && !errors.Is(err, windows.ERROR_OBJECT_NOT_FOUND) {
		return fmt.Errorf("DACL: %w", err)
	}
	acl, err := windows.ACLFromEntries([]windows.EXPLICIT_ACCESS{{
		AccessPermissions: windows.GENERIC_ALL,
		AccessMode:        mode,
		Inheritance:       windows.NO_INHERITANCE,
		Trustee:           windows.TRUSTEE{TrusteeForm: windows.TRUSTEE_IS_SID, TrusteeType: windows.TRUSTEE_IS_USER, TrusteeValue: windows.TrusteeValueFromSID(sid)},
	}}, old)
	if err != nil {
		return fmt.Errorf("build ACL: %w", err)
	}
	if err := windows.SetSecurityInfo(h, windows.SE_WINDOW_OBJECT, windows.DACL_SECURITY_INFORMATION, nil, nil, acl, nil); err != nil {
		return fmt.Errorf("SetSecurityInfo: %w", err)
	}
	return nil
}

func existingTaskUser(name string) (*TaskUser, error) {
	sid, _, _, err := windows.LookupSID("", name)
	if err != nil {
		return nil, fmt.Errorf("SID of %s: %w", name, err)
	}
	return &TaskUser{Name: name, sys: taskUserSys{sid: sid}}, nil
}

func listTaskUsers(comment string) ([]string, error) {
	users, err := netUsers()
	if err != nil {
		return nil, err
	}
	var names []string
	for name, c := range users {
		if strings.HasPrefix(strings.ToLower(name), taskUserPrefix) && c == comment {
			names = append(names, name)
		}
	}
	return names, nil
}

// own grants the account full control of dir, inherited by everything in
// it (SetNamedSecurityInfo passes the new entry down to what exists). The
// parents need no change: Windows lets every account traverse them
// (SeChangeNotifyPrivilege, "bypass traverse checking").
func (u *TaskUser) own(dir string) error {
	sd, err := windows.GetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		return fmt.Errorf("GetNamedSecurityInfo: %w", err)
	}
	old, _, err := sd.DACL()
	if err != nil {
		return fmt.Errorf("DACL: %w", err)
	}
	control, _, err := sd.Control()
	if err != nil {
		return fmt.Errorf("security descriptor control: %w", err)
	}
	acl, err := grantFullControl(old, u.sys.sid)
	if err != nil {
		return err
	}
	info := windows.SECURITY_INFORMATION(windows.DACL_SECURITY_INFORMATION)
	if control&windows.SE_DACL_PROTECTED != 0 {
		info |= windows.PROTECTED_DACL_SECURITY_INFORMATION
	}
	if err := windows.SetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT, info, nil, nil, acl, nil); err != nil {
		return fmt.Errorf("SetNamedSecurityInfo: %w", err)
	}
	return nil
}

// grantFullControl is old with full control for sid added, inherited by
// files and directories below.
func grantFullControl(old *windows.ACL, sid *windows.SID) (*windows.ACL, error) {
	acl, err := windows.ACLFromEntries([]windows.EXPLICIT_ACCESS{{
		AccessPermissions: windows.GENERIC_ALL,
		AccessMode:        windows.GRANT_ACCESS,
		Inheritance:       windows.SUB_CONTAINERS_AND_OBJECTS_INHERIT,
		Trustee:           windows.TRUSTEE{TrusteeForm: windows.TRUSTEE_IS_SID, TrusteeType: windows.TRUSTEE_IS_USER, TrusteeValue: windows.TrusteeValueFromSID(sid)},
	}}, old)
	if err != nil {
		return nil, fmt.Errorf("build ACL: %w", err)
	}
	return acl, nil
}

func (u *TaskUser) runAs(cmd *exec.Cmd) error {
	if u.sys.token == 0 {
		return errors.New("the account is not logged on")
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Token = syscall.Token(u.sys.token)
	cmd.Env = append(cmd.Env, u.sys.env...)
	return nil
}

func (u *TaskUser) addToGroup(g string) error {
	err := netLocalGroupMember(g, u.Name, true)
	if errors.Is(err, errMemberInAlias) {
		return nil
	}
	if errors.Is(err, errNoSuchAlias) {
		return fmt.Errorf("no local group %q on this machine: %w", g, err)
	}
	return err
}

// groupsChanged logs the account on again: a token's groups are those of
// its logon (generic-worker's RefreshLoginSession does the same).
func (u *TaskUser) groupsChanged() error { return u.logOn() }

func (u *TaskUser) removeFromGroup(g string) error {
	err := netLocalGroupMember(g, u.Name, false)
	if errors.Is(err, errMemberNotAlias) {
		return nil
	}
	return err
}

// uacEnabled reads EnableLUA as generic-worker's UACEnabled does
// (workers/generic-worker/multiuser_windows.go at v44.23.4).
func uacEnabled() (bool, error) {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, `SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System`, registry.QUERY_VALUE|registry.WOW64_64KEY)
	if err != nil {
		return false, fmt.Errorf("open the UAC policy key: %w", err)
	}
	defer k.Close()
	v, _, err := k.GetIntegerValue("EnableLUA")
	if err != nil {
		return false, fmt.Errorf("read EnableLUA: %w", err)
	}
	return v == 1, nil
}

func (u *TaskUser) elevate() error {
	on, err := uacEnabled()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNoElevation, err)
	}
	if !on {
		return fmt.Errorf("%w: UAC is disabled on this machine, so commands already run with the account's full rights", ErrNoElevation)
	}
	linked, err := u.sys.token.GetLinkedToken()
	if err != nil {
		return fmt.Errorf("%w: the account has no elevated token (is Administrators in payload.osGroups?): %v", ErrNoElevation, err)
	}
	u.sys.more = append(u.sys.more, linked)
	u.sys.token = linked
	return nil
}

// release closes the account's tokens, unloads its profile and takes back
// its access to the window station and desktop.
func (u *TaskUser) release() {
	if u.sys.winsta != 0 {
		_ = grantHandle(u.sys.winsta, u.sys.sid, windows.REVOKE_ACCESS)
		u.sys.winsta = 0
	}
	if u.sys.desktop != 0 {
		_ = grantHandle(u.sys.desktop, u.sys.sid, windows.REVOKE_ACCESS)
		u.sys.desktop = 0
	}
	for _, t := range u.sys.more {
		t.Close()
	}
	u.sys.more = nil
	if u.sys.profile != 0 {
		_ = unloadUserProfile(u.sys.logon, u.sys.profile)
		u.sys.profile = 0
	}
	if u.sys.logon != 0 {
		u.sys.logon.Close()
		u.sys.logon = 0
	}
	u.sys.token = 0
}

// remove unloads and deletes the profile, then deletes the account (the
// order of generic-worker's DeleteUser). A profile that cannot be deleted
// (Windows still holds it open) keeps the account: the account's
// description is how RemoveLeftTaskUsers finds it again (the between-task
// check, the next start, after the reboot that frees the profile) to
// retry; deleted, it would leave the profile with nothing to find it by.
func (u *TaskUser) remove() error {
	u.release()
	if u.sys.sid != nil {
		if err := deleteProfile(u.sys.sid.String()); err != nil && !errors.Is(err, windows.ERROR_FILE_NOT_FOUND) {
			return fmt.Errorf("%w; the account is kept so that its profile is deleted at the next try", err)
		}
	}
	if err := netUserDel(u.Name); err != nil && !errors.Is(err, nerrUserNotFound) {
		return err
	}
	return nil
}

func taskUserKill() TaskKill {
	return TaskKill{Method: TaskKillToken, Detail: "processes found by their token's user and terminated"}
}

// consoleUser is the user of the session attached to the physical console
// (WTSGetActiveConsoleSessionId, WTSQueryUserToken: the runner must run as
// LocalSystem). Commands started with its token run in that session.
func consoleUser(name string) (*TaskUser, error) {
	session := windows.WTSGetActiveConsoleSessionId()
	if session == 0xFFFFFFFF {
		return nil, errors.New("no session is attached to the console; set up autologin (docs/operations.md)")
	}
	var tok windows.Token
	if err := windows.WTSQueryUserToken(session, &tok); err != nil {
		return nil, fmt.Errorf("WTSQueryUserToken(session %d): %w (nobody logged in? set up autologin, docs/operations.md)", session, err)
	}
	user, err := tok.GetTokenUser()
	if err != nil {
		tok.Close()
		return nil, fmt.Errorf("user of the console's token: %w", err)
	}
	account, _, _, err := user.User.Sid.LookupAccount("")
	if err != nil {
		tok.Close()
		return nil, fmt.Errorf("name of the console's user: %w", err)
	}
	if name != "" && !strings.EqualFold(name, account) {
		tok.Close()
		return nil, fmt.Errorf("the console's user is %s, not %s (consoleUser); log %s in (autologin) or change consoleUser", account, name, name)
	}
	sid, err := user.User.Sid.Copy()
	if err != nil {
		tok.Close()
		return nil, fmt.Errorf("SID of the console's user: %w", err)
	}
	u := &TaskUser{Name: account, sys: taskUserSys{sid: sid, logon: tok, token: tok}}
	if err := u.readProfile(tok); err != nil {
		tok.Close()
		return nil, err
	}
	return u, nil
}
