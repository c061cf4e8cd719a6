package platform

import (
	"reflect"
	"strings"
	"testing"
)

// The commands that make a macOS task user: a record with a uid of its
// own, in staff, hidden, without a password, with its home.
func TestDsclCreateUser(t *testing.T) {
	got := dsclCreateUser("task_0123456789", 70003, "labrunner task user abc", "/Users/task_0123456789")
	p := "/Users/task_0123456789"
	want := [][]string{
		{"/usr/bin/dscl", ".", "-create", p},
		{"/usr/bin/dscl", ".", "-create", p, "UniqueID", "70003"},
		{"/usr/bin/dscl", ".", "-create", p, "PrimaryGroupID", "20"},
		{"/usr/bin/dscl", ".", "-create", p, "UserShell", "/bin/zsh"},
		{"/usr/bin/dscl", ".", "-create", p, "RealName", "labrunner task user abc"},
		{"/usr/bin/dscl", ".", "-create", p, "NFSHomeDirectory", "/Users/task_0123456789"},
		{"/usr/bin/dscl", ".", "-create", p, "Password", "*"},
		{"/usr/bin/dscl", ".", "-create", p, "IsHidden", "1"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("dsclCreateUser:\n got %q\nwant %q", got, want)
	}
	for _, argv := range got {
		for _, a := range argv {
			if strings.Contains(strings.ToLower(a), "admin") {
				t.Errorf("%q touches an admin group", argv)
			}
		}
	}
	if got := dsclDeleteUser("task_0123456789"); !reflect.DeepEqual(got, []string{"/usr/bin/dscl", ".", "-delete", p}) {
		t.Errorf("dsclDeleteUser = %q", got)
	}
	if got := darwinUserTempCleanup(5003); !reflect.DeepEqual(got, []string{"/usr/bin/find", "/private/var/folders", "-uid", "5003", "-delete"}) {
		t.Errorf("darwinUserTempCleanup = %q", got)
	}
}

// The uids of dscl's listing that lie in the task accounts' range count
// as taken; others (people's 501..., nobody's -2) are left out.
func TestDarwinUIDsIn(t *testing.T) {
	list := "_www                   70\nroot                   0\nalice                  501\ntask_aaaaaaaaaa        70000\ntask_bbbbbbbbbb        70001\ntask_cccccccccc        70003\nbob                    100000\nnobody                 -2\n"
	got := darwinUIDsIn(list, DefaultTaskUserIDs)
	if want := map[uint32]bool{70000: true, 70001: true, 70003: true}; !reflect.DeepEqual(got, want) {
		t.Errorf("darwinUIDsIn = %v, want %v", got, want)
	}
	if !reflect.DeepEqual(dsclListUIDs, []string{"/usr/bin/dscl", ".", "-list", "/Users", "UniqueID"}) || !reflect.DeepEqual(dsclListRealNames, []string{"/usr/bin/dscl", ".", "-list", "/Users", "RealName"}) {
		t.Errorf("the listings run: %q, %q", dsclListUIDs, dsclListRealNames)
	}
	if got := darwinUIDsIn("", DefaultTaskUserIDs); len(got) != 0 {
		t.Errorf("darwinUIDsIn(no accounts) = %v", got)
	}
}

// Only this runner's task accounts are picked from dscl's listing.
func TestDarwinTaskUsersIn(t *testing.T) {
	mine := taskUserComment("/var/lib/labrunner/tasks")
	list := "alice                  Alice Liddell\n" +
		"task_aaaaaaaaaa        " + mine + "\n" +
		"task_bbbbbbbbbb        " + taskUserComment("/other/tasks") + "\n" +
		"task_cccccccccc        " + mine + "\n" +
		"taskforce              " + mine + "\n"
	if got := darwinTaskUsersIn(list, mine); !reflect.DeepEqual(got, []string{"task_aaaaaaaaaa", "task_cccccccccc"}) {
		t.Errorf("darwinTaskUsersIn = %q", got)
	}
}

// osGroups on macOS: dseditgroup adds and removes the account.
func TestDseditGroup(t *testing.T) {
	if got := dseditGroup("task_a", "_developer", true); !reflect.DeepEqual(got, []string{"/usr/sbin/dseditgroup", "-o", "edit", "-a", "task_a", "-t", "user", "_developer"}) {
		t.Errorf("add: %q", got)
	}
	if got := dseditGroup("task_a", "_developer", false); !reflect.DeepEqual(got, []string{"/usr/sbin/dseditgroup", "-o", "edit", "-d", "task_a", "-t", "user", "_developer"}) {
		t.Errorf("remove: %q", got)
	}
}

// Console mode on macOS: the command enters the user's GUI bootstrap
// domain as root, then drops to the user keeping the task environment.
func TestLaunchctlAsUser(t *testing.T) {
	got := launchctlAsUser(501, "ci", []string{"/bin/sh", "-c", "open -a Safari"})
	want := []string{"/bin/launchctl", "asuser", "501", "/usr/bin/sudo", "-E", "-u", "ci", "--", "/bin/sh", "-c", "open -a Safari"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("launchctlAsUser:\n got %q\nwant %q", got, want)
	}
}
