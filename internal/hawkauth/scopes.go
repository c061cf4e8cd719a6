package hawkauth

import (
	"slices"
	"strings"
)

// validScope is taskcluster-lib-scopes' validScope: printable ASCII only.
func validScope(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// scopeList converts a decoded JSON array to scopes; ok is false when an
// element is not a string or not a valid scope. An empty array gives an
// empty, non-nil slice, because [] restricts to nothing.
func scopeList(list []any) ([]string, bool) {
	scopes := make([]string, 0, len(list))
	for _, item := range list {
		s, ok := item.(string)
		if !ok || !validScope(s) {
			return nil, false
		}
		scopes = append(scopes, s)
	}
	return scopes, true
}

// satisfies reports whether held grants scope: exactly, or by a pattern
// ending in '*' that prefixes it. Roles (assume:...) are not expanded, as
// labrunner defines none.
func satisfies(held []string, scope string) bool {
	for _, h := range held {
		if h == scope || strings.HasSuffix(h, "*") && strings.HasPrefix(scope, h[:len(h)-1]) {
			return true
		}
	}
	return false
}

func satisfiesAll(held, required []string) bool {
	for _, r := range required {
		if !satisfies(held, r) {
			return false
		}
	}
	return true
}

// mergeScopes is the sorted, duplicate-free union, as Taskcluster lists
// scopes in its messages.
func mergeScopes(a, b []string) []string {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}

// HasScopes reports whether the identity holds every required scope, as
// Taskcluster would judge it: authorizedScopes when given, else the
// certificate's scopes, else (a permanent client) everything. Every caller,
// including an anonymous one (a nil *Identity), holds assume:anonymous.
// Role expansion is not modelled.
func (id *Identity) HasScopes(required ...string) bool {
	held := []string{"*"}
	switch {
	case id == nil:
		held = nil
	case id.AuthorizedScopes != nil:
		held = id.AuthorizedScopes
	case id.Scopes != nil:
		held = id.Scopes
	}
	return satisfiesAll(mergeScopes(held, []string{"assume:anonymous"}), required)
}
