package platform

// The commands that make and unmake macOS task users (dscl, dseditgroup,
// launchctl), built here as argument lists so that tests on any OS check
// them; taskuser_darwin.go runs them. As in generic-worker's macOS engine
// (workers/generic-worker/runtime/runtime_darwin.go at v44.23.4) the
// account is a local Directory Services record in the staff group with a
// home under /Users; unlike it, the account has no password at all
// (Password "*": nobody can log in as it; the runner starts its processes
// itself) and is hidden from the login window.

import (
	"bufio"
	"slices"
	"strconv"
	"strings"
)

// darwinStaffGID is the staff group, every local user's primary group.
const darwinStaffGID = 20

// dsclUserPath is the Directory Services path of the local account name.
func dsclUserPath(name string) string { return "/Users/" + name }

// dsclCreateUser are the commands creating the hidden account name with
// uid, the description comment and home.
func dsclCreateUser(name string, uid int, comment, home string) [][]string {
	p := dsclUserPath(name)
	set := func(key, value string) []string { return []string{"/usr/bin/dscl", ".", "-create", p, key, value} }
	return [][]string{
		{"/usr/bin/dscl", ".", "-create", p},
		set("UniqueID", strconv.Itoa(uid)),
		set("PrimaryGroupID", strconv.Itoa(darwinStaffGID)),
		set("UserShell", "/bin/zsh"),
		set("RealName", comment),
		set("NFSHomeDirectory", home),
		set("Password", "*"),
		set("IsHidden", "1"),
	}
}

// dsclDeleteUser is the command deleting the account.
func dsclDeleteUser(name string) []string {
	return []string{"/usr/bin/dscl", ".", "-delete", dsclUserPath(name)}
}

// darwinUserTempCleanup removes what the account left in the per-user
// temporary and cache folders (generic-worker's DeleteUser does the same).
func darwinUserTempCleanup(uid uint32) []string {
	return []string{"/usr/bin/find", "/private/var/folders", "-uid", strconv.FormatUint(uint64(uid), 10), "-delete"}
}

// dsclListUIDs and dsclListRealNames list the local accounts with one
// attribute each ("name value" lines).
var (
	dsclListUIDs      = []string{"/usr/bin/dscl", ".", "-list", "/Users", "UniqueID"}
	dsclListRealNames = []string{"/usr/bin/dscl", ".", "-list", "/Users", "RealName"}
)

// darwinUIDsIn are the uids within r of the accounts in dsclListUIDs'
// output.
func darwinUIDsIn(listOutput string, r TaskUserIDs) map[uint32]bool {
	ids := map[uint32]bool{}
	sc := bufio.NewScanner(strings.NewReader(listOutput))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		if id, err := strconv.ParseUint(f[len(f)-1], 10, 32); err == nil && uint32(id) >= r.First && uint32(id) <= r.Last {
			ids[uint32(id)] = true
		}
	}
	return ids
}

// darwinTaskUsersIn picks, from dsclListRealNames' output, the task
// accounts described by comment.
func darwinTaskUsersIn(listOutput, comment string) []string {
	var names []string
	sc := bufio.NewScanner(strings.NewReader(listOutput))
	for sc.Scan() {
		name, rest, ok := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		if ok && strings.HasPrefix(name, taskUserPrefix) && strings.TrimSpace(rest) == comment {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// dseditGroup adds (add true) or removes the account to or from group.
func dseditGroup(name, group string, add bool) []string {
	op := "-d"
	if add {
		op = "-a"
	}
	return []string{"/usr/sbin/dseditgroup", "-o", "edit", op, name, "-t", "user", group}
}

// launchctlAsUser wraps argv so that it runs as the console's user name
// (uid) inside that user's GUI bootstrap domain, where the window server,
// pasteboard and keychain of the session are reachable: launchctl asuser
// enters the domain (it needs root), sudo then drops to the account,
// keeping the environment the runner built (-E) and its HOME.
func launchctlAsUser(uid uint32, name string, argv []string) []string {
	out := []string{"/bin/launchctl", "asuser", strconv.FormatUint(uint64(uid), 10), "/usr/bin/sudo", "-E", "-u", name, "--"}
	return append(out, argv...)
}
