package platform

// The ids of per-task accounts on Linux and macOS. An id given to a task
// account is not given again until every id of the range has been, and
// then only to an id that nothing on the machine still carries: a uid that
// came back at once would hand the next task whatever the last one left
// (files in /tmp, IPC objects, a daemon started through a setuid file).
// taskuser_idalloc_unix.go allocates; docs/operations.md ("Task users")
// explains the choice to operators.

import (
	"fmt"
	"strconv"
	"strings"
)

// TaskUserIDs is the range of uids (and on Linux gids: each account's
// group has its uid as gid) that per-task accounts get, First to Last
// inclusive. The zero value is DefaultTaskUserIDs. Windows accounts have
// SIDs, never reused, and ignore it.
type TaskUserIDs struct {
	First, Last uint32
}

// DefaultTaskUserIDs is the range used unless the configuration names one
// (taskUserIds): above the ids systemd reserves up to 65535 (homed,
// DynamicUser, nobody), below the first subordinate ids useradd hands out
// for containers (/etc/subuid from 100000) and far from the ids people's
// accounts get (1000 up on Linux, 501 up on macOS).
var DefaultTaskUserIDs = TaskUserIDs{First: 70000, Last: 99999}

// Limits of a configured range (ParseTaskUserIDs).
const (
	// minTaskUserID keeps task accounts out of the system accounts' ids.
	minTaskUserID = 1000
	// maxTaskUserID keeps them below systemd-nspawn's container ranges
	// (524288 up) and far below 2^31, where tools that keep uids in
	// signed integers break.
	maxTaskUserID = 524287
	// minTaskUserIDs ids at least: a range wraps after that many tasks.
	minTaskUserIDs = 1000
)

// systemd's reserved ids between the limits: systemd-homed (60001-60513),
// DynamicUser= (61184-65519), nobody (65534) and the 16-bit -1 (65535);
// docs/operations.md cites systemd's "Users, Groups, UIDs and GIDs" table.
const reservedFirst, reservedLast = 60001, 65535

// Count is how many ids the range holds.
func (r TaskUserIDs) Count() uint32 { return r.Last - r.First + 1 }

// String is the range as the configuration writes it: FIRST-LAST.
func (r TaskUserIDs) String() string { return fmt.Sprintf("%d-%d", r.First, r.Last) }

// OrDefault is r, or DefaultTaskUserIDs for the zero value.
func (r TaskUserIDs) OrDefault() TaskUserIDs {
	if r == (TaskUserIDs{}) {
		return DefaultTaskUserIDs
	}
	return r
}

// ParseTaskUserIDs reads a range written FIRST-LAST (e.g. 70000-99999);
// "" is DefaultTaskUserIDs. The refusal says what a valid range is.
func ParseTaskUserIDs(s string) (TaskUserIDs, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return DefaultTaskUserIDs, nil
	}
	a, b, ok := strings.Cut(s, "-")
	first, err1 := strconv.ParseUint(strings.TrimSpace(a), 10, 32)
	last, err2 := strconv.ParseUint(strings.TrimSpace(b), 10, 32)
	if !ok || err1 != nil || err2 != nil {
		return TaskUserIDs{}, fmt.Errorf("%q is not a range of ids; write FIRST-LAST, e.g. %s", s, DefaultTaskUserIDs)
	}
	r := TaskUserIDs{First: uint32(first), Last: uint32(last)}
	switch {
	case r.First > r.Last:
		return TaskUserIDs{}, fmt.Errorf("%s: the first id is above the last", r)
	case r.First < minTaskUserID || r.Last > maxTaskUserID:
		return TaskUserIDs{}, fmt.Errorf("%s: task account ids must lie between %d (below are system accounts) and %d (above are systemd-nspawn's container ids)", r, minTaskUserID, maxTaskUserID)
	case r.First <= reservedLast && r.Last >= reservedFirst:
		return TaskUserIDs{}, fmt.Errorf("%s overlaps %d-%d, which systemd reserves (homed, DynamicUser, nobody); choose ids outside it", r, reservedFirst, reservedLast)
	case r.Count() < minTaskUserIDs:
		return TaskUserIDs{}, fmt.Errorf("%s holds %d ids; give at least %d, since ids come back only after the whole range was used", r, r.Count(), minTaskUserIDs)
	}
	return r, nil
}
