package mounts

// The payload's mounts as typed values. The agent has already validated the
// payload against generic-worker's v44 schema; what is checked here is what
// the schema cannot say: paths that leave the task directory, base64 that
// does not decode, the scopes a writable cache needs and the dependencies
// an artifact mount needs (as generic-worker's TaskMount does in
// workers/generic-worker/mounts.go at v44.23.4).

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// Kind is the kind of a mount.
type Kind int

// The three kinds of mount of the v44 schema.
const (
	// FileMount writes content to a file.
	FileMount Kind = iota
	// ReadOnlyDirectory unpacks an archive into a directory.
	ReadOnlyDirectory
	// WritableCache is a named directory that outlives the task.
	WritableCache
)

// Format is an archive format of the v44 schema.
type Format string

// The archive formats of the v44 schema.
const (
	Rar    Format = "rar"
	TarBz2 Format = "tar.bz2"
	TarGz  Format = "tar.gz"
	TarXz  Format = "tar.xz"
	TarZst Format = "tar.zst"
	Zip    Format = "zip"
)

// Content is where a mount's bytes come from: exactly one of an artifact
// (TaskID and Artifact), URL, Raw or Base64 is set.
type Content struct {
	TaskID   string `json:"taskId,omitempty"`
	Artifact string `json:"artifact,omitempty"`
	URL      string `json:"url,omitempty"`
	Raw      string `json:"raw,omitempty"`
	Base64   string `json:"base64,omitempty"`
	// SHA256 is the required digest (hex), when the task gives one.
	SHA256 string `json:"sha256,omitempty"`
}

// String names the content in log lines as generic-worker does.
func (c *Content) String() string {
	switch {
	case c.Artifact != "":
		return "task " + c.TaskID + " artifact " + c.Artifact
	case c.URL != "":
		return "url " + c.URL
	case c.Base64 != "":
		return fmt.Sprintf("base64 content (%d characters)", len(c.Base64))
	}
	return fmt.Sprintf("raw content (%d bytes)", len(c.Raw))
}

// sourceKey identifies where the content comes from, for the download
// cache's index (generic-worker's UniqueKey).
func (c *Content) sourceKey() string {
	switch {
	case c.Artifact != "":
		return "artifact:" + c.TaskID + ":" + c.Artifact
	case c.URL != "":
		return "url:" + c.URL
	}
	// Inline content is its own key: its digest is known without fetching.
	return ""
}

// inline is the bytes of raw or base64 content; ok is false for content
// that has to be fetched.
func (c *Content) inline() (b []byte, ok bool, err error) {
	switch {
	case c.Base64 != "":
		b, err := base64.StdEncoding.DecodeString(c.Base64)
		return b, true, err
	case c.Artifact == "" && c.URL == "":
		return []byte(c.Raw), true, nil
	}
	return nil, false, nil
}

// Mount is one entry of the payload's mounts.
type Mount struct {
	// Kind says which of the three kinds this is.
	Kind Kind
	// Path is the file or directory relative to the task directory, as the
	// payload wrote it (slash or backslash separated).
	Path string
	// CacheName names a writable cache.
	CacheName string
	// Content is nil only for a writable cache without preloaded content.
	Content *Content
	// Format is the archive format of a directory's content.
	Format Format
	// Field is the payload field, e.g. payload.mounts[2], for messages.
	Field string
}

// Problem is something wrong with a mount, named by its payload field.
type Problem struct {
	Field   string
	Message string
}

type wireMount struct {
	File      *string  `json:"file"`
	Directory *string  `json:"directory"`
	CacheName *string  `json:"cacheName"`
	Content   *Content `json:"content"`
	Format    Format   `json:"format"`
}

// Parse decodes schema-valid mount entries; problems name the field and
// the fix.
func Parse(raw []json.RawMessage) ([]Mount, []Problem) {
	var out []Mount
	var probs []Problem
	for i, r := range raw {
		field := fmt.Sprintf("payload.mounts[%d]", i)
		var w wireMount
		if err := json.Unmarshal(r, &w); err != nil {
			probs = append(probs, Problem{field, fmt.Sprintf("cannot be read (%v); it must be a file mount, a read-only directory or a writable cache", err)})
			continue
		}
		m := Mount{Content: w.Content, Format: w.Format, Field: field}
		pathField := field
		switch {
		case w.CacheName != nil:
			m.Kind, m.CacheName, pathField = WritableCache, *w.CacheName, field+".directory"
			if w.Directory != nil {
				m.Path = *w.Directory
			}
		case w.Directory != nil:
			m.Kind, m.Path, pathField = ReadOnlyDirectory, *w.Directory, field+".directory"
		case w.File != nil:
			m.Kind, m.Path, pathField = FileMount, *w.File, field+".file"
		default:
			probs = append(probs, Problem{field, `is none of a file mount ("file"), a read-only directory ("directory") or a writable cache ("cacheName")`})
			continue
		}
		if msg := checkRelative(m.Path); msg != "" {
			probs = append(probs, Problem{pathField, msg})
		}
		if m.Kind == WritableCache && m.CacheName == "" {
			probs = append(probs, Problem{field + ".cacheName", "is empty; name the cache, e.g. \"cargo-registry\""})
		}
		if m.Content != nil {
			if _, _, err := m.Content.inline(); err != nil {
				probs = append(probs, Problem{field + ".content.base64", fmt.Sprintf("is not valid base64 (%v); encode the content with standard base64", err)})
			}
		}
		out = append(out, m)
	}
	return out, probs
}

// checkRelative explains why p cannot be a path inside the task
// directory, or returns "".
func checkRelative(p string) string {
	s := strings.ReplaceAll(p, `\`, "/")
	if path.IsAbs(s) || filepath.VolumeName(p) != "" || (len(s) >= 2 && s[1] == ':') {
		return fmt.Sprintf("%q is absolute; give a path relative to the task directory", p)
	}
	if c := path.Clean(s); c == ".." || strings.HasPrefix(c, "../") {
		return fmt.Sprintf("%q leaves the task directory; give a path inside it", p)
	}
	return ""
}

// RequiredScopes lists the scopes the task must have: one
// generic-worker:cache:<cacheName> per writable cache.
func RequiredScopes(ms []Mount) []string {
	var out []string
	for _, m := range ms {
		if m.Kind == WritableCache {
			out = append(out, "generic-worker:cache:"+m.CacheName)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// MissingScopes lists the required scopes that taskScopes do not grant
// (exactly, or by a pattern ending in *). Roles (assume:) are not expanded.
func MissingScopes(ms []Mount, taskScopes []string) []string {
	var out []string
	for _, need := range RequiredScopes(ms) {
		if !slices.ContainsFunc(taskScopes, func(have string) bool {
			return have == need || strings.HasSuffix(have, "*") && strings.HasPrefix(need, have[:len(have)-1])
		}) {
			out = append(out, need)
		}
	}
	return out
}

// MissingDependencies lists the tasks whose artifacts are mounted but that
// are not in the task's dependencies (generic-worker refuses those).
func MissingDependencies(ms []Mount, dependencies []string) []string {
	var out []string
	for _, m := range ms {
		if m.Content != nil && m.Content.Artifact != "" && !slices.Contains(dependencies, m.Content.TaskID) {
			out = append(out, m.Content.TaskID)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
