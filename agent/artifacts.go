package agent

// Payload artifacts become queue artifacts as generic-worker makes them
// (workers/generic-worker/artifacts.go): a readable file is an s3 artifact,
// a directory is walked into one s3 artifact per file, and a path that is
// missing or of the wrong kind is an error artifact, which fails the task.

import (
	"errors"
	"fmt"
	"mime"
	"os"
	"path/filepath"
	"strings"
	"time"

	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
)

// ArtifactKind is how an artifact is stored.
type ArtifactKind string

// Artifact kinds the agent creates (the queue's storageType values).
const (
	KindFile      ArtifactKind = "s3"
	KindError     ArtifactKind = "error"
	KindReference ArtifactKind = "reference"
	KindLink      ArtifactKind = "link"
)

// Error artifact reasons, as generic-worker uses them.
const (
	ReasonFileMissing     = "file-missing-on-worker"
	ReasonInvalidResource = "invalid-resource-on-worker"
)

// RunArtifact is one artifact to create for a run.
type RunArtifact struct {
	Kind    ArtifactKind
	Name    string
	Expires time.Time
	// Path is the file to upload (KindFile), absolute.
	Path string
	// ContentType and ContentEncoding (identity or gzip) describe the
	// upload (KindFile), or the target (KindReference, KindLink).
	ContentType, ContentEncoding string
	// URL is a reference's target; Target is a link's target artifact name.
	URL, Target string
	// Reason and Message describe an error artifact.
	Reason, Message string
}

// request is the createArtifact body.
func (a RunArtifact) request() map[string]any {
	m := map[string]any{
		"storageType": string(a.Kind),
		"expires":     tcclient.Time(a.Expires),
	}
	switch a.Kind {
	case KindFile:
		m["contentType"] = a.ContentType
	case KindReference:
		m["url"] = a.URL
		m["contentType"] = a.ContentType
	case KindLink:
		m["artifact"] = a.Target
		if a.ContentType != "" {
			m["contentType"] = a.ContentType
		}
	case KindError:
		m["reason"] = a.Reason
		m["message"] = truncate(a.Message, 4096)
	}
	return m
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// customMimeTypes complements the system's table, as generic-worker does.
var customMimeTypes = map[string]string{".log": "text/plain"}

// incompressible lists the extensions generic-worker uploads as identity.
var incompressible = map[string]bool{
	".7z": true, ".bz2": true, ".dmg": true, ".flv": true, ".gif": true, ".gz": true,
	".jpeg": true, ".jpg": true, ".png": true, ".swf": true, ".tbz": true, ".tgz": true,
	".webp": true, ".whl": true, ".woff": true, ".woff2": true, ".xz": true, ".zip": true, ".zst": true,
}

// resolveArtifacts turns payload artifact specs into the artifacts to
// create, relative to taskDir; taskExpires is the default expiry.
func resolveArtifacts(taskDir string, specs []PayloadArtifact, taskExpires time.Time) []RunArtifact {
	var out []RunArtifact
	for _, spec := range specs {
		// Payload paths may use either separator (payload.go).
		path := filepath.FromSlash(strings.ReplaceAll(spec.Path, "\\", "/"))
		name := spec.Name
		if name == "" {
			name = filepath.ToSlash(path)
		}
		expires := spec.Expires
		if expires.IsZero() {
			expires = taskExpires
		}
		full := filepath.Join(taskDir, path)
		if spec.Type != DirectoryArtifact {
			out = append(out, resolveFile(full, path, name, expires, spec.ContentType, spec.ContentEncoding))
			continue
		}
		info, err := os.Stat(full)
		switch {
		case err != nil:
			out = append(out, errorArtifact(name, expires, ReasonFileMissing, fmt.Sprintf("Could not read directory '%s'", full)))
			continue
		case !info.IsDir():
			out = append(out, errorArtifact(name, expires, ReasonInvalidResource, fmt.Sprintf("Directory artifact '%s' exists as a file, not a directory, on the worker", full)))
			continue
		}
		walkErr := filepath.WalkDir(full, func(p string, d os.DirEntry, err error) error {
			rel, relErr := filepath.Rel(full, p)
			if relErr != nil {
				return relErr
			}
			subName := name + "/" + filepath.ToSlash(rel)
			if err != nil {
				out = append(out, errorArtifact(subName, expires, ReasonFileMissing, fmt.Sprintf("Could not read '%s': %v", p, err)))
				if d != nil && d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.IsDir() {
				return nil
			}
			out = append(out, resolveFile(p, filepath.Join(path, rel), subName, expires, spec.ContentType, spec.ContentEncoding))
			return nil
		})
		if walkErr != nil {
			out = append(out, errorArtifact(name, expires, ReasonFileMissing, fmt.Sprintf("Could not walk directory '%s': %v", full, walkErr)))
		}
	}
	return out
}

func errorArtifact(name string, expires time.Time, reason, message string) RunArtifact {
	return RunArtifact{Kind: KindError, Name: name, Expires: expires, Reason: reason, Message: message}
}

// resolveFile makes the artifact for one payload file, guessing content
// type and encoding from the extension when the payload does not say.
func resolveFile(full, rel, name string, expires time.Time, contentType, contentEncoding string) RunArtifact {
	info, err := os.Stat(full)
	if err != nil {
		return errorArtifact(name, expires, ReasonFileMissing, fmt.Sprintf("Could not read file '%s'", full))
	}
	if info.IsDir() {
		return errorArtifact(name, expires, ReasonInvalidResource, fmt.Sprintf("File artifact '%s' exists as a directory, not a file, on the worker", full))
	}
	f, err := os.Open(full)
	if err != nil {
		return errorArtifact(name, expires, ReasonFileMissing, fmt.Sprintf("Could not read file '%s'", full))
	}
	_ = f.Close()
	ext := strings.ToLower(filepath.Ext(rel))
	if contentType == "" {
		contentType = customMimeTypes[ext]
	}
	if contentType == "" {
		contentType = mime.TypeByExtension(ext)
	}
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	if contentEncoding == "" {
		contentEncoding = "gzip"
		if incompressible[ext] {
			contentEncoding = "identity"
		}
	}
	return RunArtifact{Kind: KindFile, Name: name, Expires: expires, Path: full, ContentType: contentType, ContentEncoding: contentEncoding}
}

// artifactError is a failure to create an artifact; status is the queue's
// HTTP answer, 0 when the failure was elsewhere (upload, local I/O).
type artifactError struct {
	name   string
	status int
	err    error
}

// Error names the artifact and, if the queue refused it, its answer.
func (e *artifactError) Error() string {
	if e.status != 0 {
		return fmt.Sprintf("create artifact %s: queue answered %d: %v", e.name, e.status, e.err)
	}
	return fmt.Sprintf("create artifact %s: %v", e.name, e.err)
}

// Unwrap exposes the cause.
func (e *artifactError) Unwrap() error { return e.err }

// artifactStatus is the queue's HTTP status for a failed Publish, or 0.
func artifactStatus(err error) int {
	var ae *artifactError
	if errors.As(err, &ae) {
		return ae.status
	}
	return 0
}
