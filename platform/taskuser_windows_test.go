//go:build windows

package platform

// Task users on Windows. Wine (make wintest) runs the token, DACL,
// process and console-session parts; its netapi32 keeps NetUserAdd's
// accounts inside the calling process (LookupAccountName, LogonUser,
// LoadUserProfile, DeleteProfile know nothing of them), so the life of a
// real account runs only on Windows (TestWindowsTaskUserLife).

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/windows"
)

func cmdExe() string { return filepath.Join(os.Getenv("SystemRoot"), "System32", "cmd.exe") }

// runTree runs cmd as a process tree and returns its output.
func runTree(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	tree, err := StartProcessTree(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	if code, err := tree.Wait(); code != 0 || err != nil {
		t.Fatalf("exit %d, %v: %s", code, err, out.String())
	}
	return out.String()
}

// The full life of a task user: a local account outside Administrators,
// with its runner's description, logged on with a profile; a command
// runs as it in its task directory; a process it leaves is terminated;
// the account and its profile are gone afterwards.
func TestWindowsTaskUserLife(t *testing.T) {
	if underWine() {
		t.Skip("Wine keeps NetUserAdd's accounts inside the calling process: no SID, logon or profile (docs/operations.md, What was tested where)")
	}
	if err := CheckTaskUserMode(TaskUserPerTask); err != nil {
		t.Skipf("this account cannot make task users (run the tests as LocalSystem): %v", err)
	}
	u, err := NewTaskUser(t.Name(), TaskUserIDs{})
	if err != nil {
		t.Fatal(err)
	}
	removed := false
	defer func() {
		if !removed {
			_, _ = u.KillProcesses()
			_ = u.Remove()
		}
	}()
	if names, err := listTaskUsers(taskUserComment(t.Name())); err != nil || len(names) != 1 || !strings.EqualFold(names[0], u.Name) {
		t.Errorf("the accounts with this runner's description: %v, %v; want [%s]", names, err, u.Name)
	}
	admins, err := windows.CreateWellKnownSid(windows.WinBuiltinAdministratorsSid)
	if err != nil {
		t.Fatal(err)
	}
	if in, err := u.sys.token.IsMember(admins); err != nil || in {
		t.Errorf("the task user's token is in Administrators: %v, %v", in, err)
	}
	if fi, err := os.Stat(u.Home); err != nil || !fi.IsDir() {
		t.Errorf("profile directory %q: %v", u.Home, err)
	}
	dir := filepath.Join(testTempDir(t), "task")
	if err := PrepareTaskDir(dir); err != nil {
		t.Fatal(err)
	}
	if err := u.Own(dir); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(cmdExe(), "/c", `echo %USERNAME%>made.txt & start /b ping -n 600 127.0.0.1 >nul`)
	cmd.Dir = dir
	cmd.Env = []string{"SystemRoot=" + os.Getenv("SystemRoot"), "PATH=" + os.Getenv("PATH")}
	if err := u.RunAs(cmd); err != nil {
		t.Fatal(err)
	}
	runTree(t, cmd)
	if b, err := os.ReadFile(filepath.Join(dir, "made.txt")); err != nil || !strings.EqualFold(strings.TrimSpace(string(b)), u.Name) {
		t.Errorf("made.txt: %q, %v; want the task user's name", b, err)
	}
	if n, err := u.KillProcesses(); err != nil {
		t.Errorf("KillProcesses = %d, %v", n, err)
	}
	if pids, err := u.Survivors(); err != nil || len(pids) != 0 {
		t.Errorf("processes %v of the task user survive: %v", pids, err)
	}
	if err := u.Remove(); err != nil {
		t.Fatal(err)
	}
	removed = true
	if _, _, _, err := windows.LookupSID("", u.Name); err == nil {
		t.Errorf("the account %s still exists after Remove", u.Name)
	}
	if _, err := os.Stat(u.Home); !os.IsNotExist(err) {
		t.Errorf("profile %s still exists after Remove: %v", u.Home, err)
	}
}

// Where the runner cannot start processes as another account (Wine's
// token, an administrator's console), per-task is refused with the
// setting and the fix named.
func TestWindowsPerTaskRefusalNamesTheFix(t *testing.T) {
	if held, err := privilegeHeld("SeAssignPrimaryTokenPrivilege"); err != nil || held {
		t.Skipf("this account holds SeAssignPrimaryTokenPrivilege (%v): nothing to refuse", err)
	}
	err := CheckTaskUserMode(TaskUserPerTask)
	if !errors.Is(err, ErrTaskUserModeUnsupported) || !strings.Contains(err.Error(), "LocalSystem") || !strings.Contains(err.Error(), "taskUser: service") {
		t.Errorf("CheckTaskUserMode(per-task) = %v; want the refusal with LocalSystem and taskUser: service named", err)
	}
}

// A profile that cannot be deleted keeps its account: the account's
// description is how RemoveLeftTaskUsers finds the profile again to
// retry. Wine has no DeleteProfile, so every deletion fails there, and
// its NetUserAdd keeps the account in this process; on Windows deletion
// succeeds (TestWindowsTaskUserLife).
func TestWindowsTaskUserKeptWhileItsProfileStays(t *testing.T) {
	if procDeleteProfileW.Find() == nil {
		t.Skip("this Windows has DeleteProfile: the failure is not reproduced here")
	}
	name := taskUserPrefix + "0badc0ffee"
	pw, err := randomWindowsPassword()
	if err != nil {
		t.Fatal(err)
	}
	if err := netUserAdd(&userInfo1{Name: windows.StringToUTF16Ptr(name), Password: windows.StringToUTF16Ptr(pw),
		Priv: userPrivUser, Comment: windows.StringToUTF16Ptr(taskUserComment(t.Name())), Flags: ufScript | ufDontExpirePasswd}); err != nil {
		t.Skipf("no account can be made here: %v", err)
	}
	sid, err := windows.StringToSid("S-1-5-21-1000-2000-3000-4242")
	if err != nil {
		t.Fatal(err)
	}
	u := &TaskUser{Name: name, sys: taskUserSys{sid: sid}}
	if err := u.Remove(); err == nil || !strings.Contains(err.Error(), "kept") {
		t.Errorf("Remove with a profile that stays = %v; want an error saying the account is kept", err)
	}
	// Deleting it now (Wine's NetUserEnum lists nothing) says it was kept.
	if err := netUserDel(name); err != nil {
		t.Errorf("the account is gone after a removal that left its profile (NetUserDel: %v); want it kept for the retry", err)
	}
}

// The password has every character class a complexity policy asks for
// and is different each time.
func TestWindowsTaskUserPassword(t *testing.T) {
	a, err := randomWindowsPassword()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := randomWindowsPassword()
	has := func(set string) bool { return strings.ContainsAny(a, set) }
	if len(a) < 20 || a == b || !has("ABCDEFGHJKLMNPQRSTUVWXYZ") || !has("abcdefghijkmnopqrstuvwxyz") || !has("0123456789") || !has("!#%+-.=@_") {
		t.Errorf("passwords %q, %q: want long, different, all classes", a, b)
	}
}

// Own grants the account's SID full control of the task directory, passed
// down to what is in it and what is created there, and the directory's
// DACL stays protected. Wine accepts the calls but keeps no file DACLs:
// there the ACL Own writes is checked instead of the one read back.
func TestWindowsTaskUserOwnsTaskDir(t *testing.T) {
	sid, err := windows.StringToSid("S-1-5-21-1111111111-2222222222-3333333333-1234")
	if err != nil {
		t.Fatal(err)
	}
	u := &TaskUser{Name: "task_test", sys: taskUserSys{sid: sid}}
	dir := filepath.Join(testTempDir(t), "task")
	if err := PrepareTaskDir(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "before"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := u.Own(dir); err != nil {
		t.Fatal(err)
	}
	system, _ := windows.CreateWellKnownSid(windows.WinLocalSystemSid)
	kept, _ := windows.ACLFromEntries([]windows.EXPLICIT_ACCESS{{AccessPermissions: windows.GENERIC_ALL, AccessMode: windows.SET_ACCESS,
		Trustee: windows.TRUSTEE{TrusteeForm: windows.TRUSTEE_IS_SID, TrusteeValue: windows.TrusteeValueFromSID(system)}}}, nil)
	acl, err := grantFullControl(kept, sid)
	if err != nil {
		t.Fatal(err)
	}
	if aces := aclEntries(t, acl); len(aces) != 2 || !aces[0].sid.Equals(sid) && !aces[1].sid.Equals(sid) {
		t.Errorf("the ACL Own writes: %v; want SYSTEM's entry kept and the task user's added", aces)
	} else {
		for _, a := range aces {
			if a.sid.Equals(sid) && (a.flags&(windows.OBJECT_INHERIT_ACE|windows.CONTAINER_INHERIT_ACE) != windows.OBJECT_INHERIT_ACE|windows.CONTAINER_INHERIT_ACE || a.mask&windows.GENERIC_ALL == 0 && a.mask&0x1F01FF != 0x1F01FF) {
				t.Errorf("the task user's entry %+v: want full control inherited by files and directories", a)
			}
		}
	}
	if underWine() {
		t.Skip("Wine keeps no file DACLs: the ACL written was checked, it cannot be read back")
	}
	if err := os.WriteFile(filepath.Join(dir, "after"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, filepath.Join(dir, "before"), filepath.Join(dir, "after")} {
		if !aclGrants(t, p, sid) {
			t.Errorf("%s: the DACL does not grant the task user", p)
		}
	}
	sd, err := windows.GetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		t.Fatal(err)
	}
	if c, _, _ := sd.Control(); c&windows.SE_DACL_PROTECTED == 0 {
		t.Errorf("the task directory's DACL is no longer protected")
	}
}

// ace is one allow entry of an ACL.
type ace struct {
	sid   *windows.SID
	mask  windows.ACCESS_MASK
	flags uint8
}

// aclEntries lists acl's allow entries.
func aclEntries(t *testing.T, acl *windows.ACL) []ace {
	t.Helper()
	var out []ace
	for i := range uint32(acl.AceCount) {
		var a *windows.ACCESS_ALLOWED_ACE
		if err := windows.GetAce(acl, i, &a); err != nil {
			t.Fatal(err)
		}
		if a.Header.AceType == windows.ACCESS_ALLOWED_ACE_TYPE {
			out = append(out, ace{sid: (*windows.SID)(unsafe.Pointer(&a.SidStart)), mask: a.Mask, flags: a.Header.AceFlags})
		}
	}
	return out
}

// aclGrants says whether path's DACL has an allow entry for sid.
func aclGrants(t *testing.T, path string, sid *windows.SID) bool {
	t.Helper()
	sd, err := windows.GetNamedSecurityInfo(path, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		t.Fatal(err)
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(aclEntries(t, dacl), func(a ace) bool { return a.sid.Equals(sid) })
}

// ownPrimaryToken is a primary token of the test's own account, standing
// in for a task user's logon under Wine.
func ownPrimaryToken(t *testing.T) windows.Token {
	t.Helper()
	var tok windows.Token
	if err := windows.DuplicateTokenEx(windows.GetCurrentProcessToken(), windows.MAXIMUM_ALLOWED, nil, windows.SecurityImpersonation, windows.TokenPrimary, &tok); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tok.Close() })
	return tok
}

// RunAs starts commands with the account's token (CreateProcessAsUser
// inside a process tree), its variables replacing the runner's; the
// account's processes are found by the user of their token.
func TestWindowsRunAsUsesTheToken(t *testing.T) {
	tok := ownPrimaryToken(t)
	user, err := tok.GetTokenUser()
	if err != nil {
		t.Fatal(err)
	}
	u := &TaskUser{Name: "task_test", sys: taskUserSys{sid: user.User.Sid, token: tok, env: []string{"USERNAME=task_test", `USERPROFILE=C:\Users\task_test`}}}
	cmd := exec.Command(cmdExe(), "/c", "echo %USERNAME%&echo %USERPROFILE%")
	cmd.Env = []string{"SystemRoot=" + os.Getenv("SystemRoot"), "USERNAME=runner", `USERPROFILE=C:\runner`}
	if err := u.RunAs(cmd); err != nil {
		t.Fatal(err)
	}
	if cmd.SysProcAttr == nil || cmd.SysProcAttr.Token != syscall.Token(tok) {
		t.Fatal("RunAs did not give the command the account's token")
	}
	if got := runTree(t, cmd); got != "task_test\r\n"+`C:\Users\task_test`+"\r\n" {
		t.Errorf("output %q: want the account's USERNAME and USERPROFILE", got)
	}

	// A command waiting on its input is listed among the account's
	// processes while it runs.
	cmd = exec.Command(cmdExe(), "/c", "set /p x=")
	cmd.Env = []string{"SystemRoot=" + os.Getenv("SystemRoot")}
	if err := u.RunAs(cmd); err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	tree, err := StartProcessTree(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	pids, err := u.processes()
	if err != nil || !slices.Contains(pids, tree.Pid()) {
		t.Errorf("the account's processes %v (%v) lack the running command %d", pids, err, tree.Pid())
	}
	stdin.Close()
	if _, err := tree.Wait(); err != nil {
		t.Fatal(err)
	}
}

// Without UAC (Wine has none) features.runAsAdministrator has no elevated
// token to give: the refusal says why.
func TestWindowsRunElevatedWithoutUAC(t *testing.T) {
	if on, err := uacEnabled(); err != nil || on {
		t.Skipf("UAC is on here (%v): covered by TestWindowsTaskUserLife's machine", err)
	}
	u := &TaskUser{Name: "task_test", sys: taskUserSys{token: ownPrimaryToken(t)}}
	err := u.RunElevated()
	if !errors.Is(err, ErrNoElevation) || !strings.Contains(err.Error(), "UAC is disabled") {
		t.Errorf("RunElevated without UAC = %v; want ErrNoElevation saying UAC is disabled", err)
	}
}

// The console's user is the user of the console session's token
// (WTSQueryUserToken, which Wine answers with its own user); its commands
// start with that token and its variables; another name is refused.
func TestWindowsConsoleTaskUser(t *testing.T) {
	u, err := ConsoleTaskUser("")
	refused := err != nil && strings.Contains(err.Error(), "elevated token")
	if refused {
		// Wine's user is an elevated administrator: refused, as a real
		// machine's would be. What follows runs as if it were not.
		defer func(f func(windows.Token) bool) { tokenElevated = f }(tokenElevated)
		tokenElevated = func(windows.Token) bool { return false }
		u, err = ConsoleTaskUser("")
	}
	if err != nil {
		t.Skipf("no console session here (a service's session 0 on a machine nobody logged in to?): %v", err)
	}
	defer u.Remove()
	if elevated := u.sys.token.IsElevated(); elevated != refused {
		t.Errorf("the console's token is elevated: %v; refused: %v; want a refusal exactly when elevated", elevated, refused)
	}
	if !u.Console || u.Name == "" || u.Home == "" {
		t.Fatalf("console user %+v: want a name and a profile", u)
	}
	cmd := exec.Command(cmdExe(), "/c", "echo %USERNAME%")
	cmd.Env = []string{"SystemRoot=" + os.Getenv("SystemRoot"), "USERNAME=runner"}
	if err := u.RunAs(cmd); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(runTree(t, cmd)); !strings.EqualFold(got, u.Name) {
		t.Errorf("the command ran as %q, want the console's user %q", got, u.Name)
	}
	if n, err := u.KillProcesses(); n != 0 || err != nil {
		t.Errorf("KillProcesses on the console's user = %d, %v; want its session left alone", n, err)
	}
	if _, err := ConsoleTaskUser("task_nobody"); err == nil || !strings.Contains(err.Error(), "consoleUser") {
		t.Errorf("ConsoleTaskUser(another name) = %v; want a refusal naming consoleUser", err)
	}
}
