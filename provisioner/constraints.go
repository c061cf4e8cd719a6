package provisioner

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/labrunner/labrunner/provisioner/client"
)

// matcher is a pool's constraints compiled for the assigner's hot loop.
type matcher struct {
	os, arch, model []string
	osVersion       *regexp.Regexp
	tags            map[string]string
}

func compileConstraints(c client.Constraints) matcher {
	m := matcher{os: lower(c.OS), arch: lower(c.Arch), model: c.Model, tags: c.Tags}
	if c.OSVersion != "" {
		// Validated when the pool was stored; a bad one matches nothing.
		re, err := regexp.Compile("^(?:" + c.OSVersion + ")$")
		if err != nil {
			re = regexp.MustCompile(`$.^`)
		}
		m.osVersion = re
	}
	return m
}

func lower(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToLower(s)
	}
	return out
}

// matches reports whether facts satisfy the constraints.
func (m *matcher) matches(f *client.Facts) bool {
	return m.mismatch(f) == ""
}

// mismatch names the first constraint facts fail, or "" when they fit.
func (m *matcher) mismatch(f *client.Facts) string {
	if len(m.os) > 0 && !slices.Contains(m.os, strings.ToLower(f.OS)) {
		return fmt.Sprintf("constraints.os %v does not include %q", m.os, f.OS)
	}
	if len(m.arch) > 0 && !slices.Contains(m.arch, strings.ToLower(f.Arch)) {
		return fmt.Sprintf("constraints.arch %v does not include %q", m.arch, f.Arch)
	}
	if len(m.model) > 0 && !slices.Contains(m.model, f.Model) {
		return fmt.Sprintf("constraints.model %v does not include %q", m.model, f.Model)
	}
	if m.osVersion != nil && !m.osVersion.MatchString(f.OSVersion) {
		return fmt.Sprintf("constraints.osVersion %s does not match %q", m.osVersion, f.OSVersion)
	}
	for k, v := range m.tags {
		if f.Tags[k] != v {
			return fmt.Sprintf("constraints.tags needs %s=%s, machine has %q", k, v, f.Tags[k])
		}
	}
	return ""
}
