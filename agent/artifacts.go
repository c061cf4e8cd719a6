package agent

// Payload artifacts become queue artifacts as generic-worker makes them
// (workers/generic-worker/artifacts.go): a readable file is an s3 artifact,
// a directory is walked into one s3 artifact per file, and a path that is
// missing or of the wrong kind is an error artifact, which fails the task.
// Unlike generic-worker's, every read stays inside the task directory and
// takes only regular files the task could read (artifactopen.go).

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
	// Path is the file to upload (KindFile), absolute. A task's file is
	// read through root as rel (open), never by Path, which only names it.
	Path string
	root *os.Root
	rel  string
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
// create; root is the task directory taskDir, through which every file is
// read (artifactopen.go); taskExpires is the default expiry. Payload paths
// were checked at parse time (checkArtifactPath).
func resolveArtifacts(root *os.Root, taskDir string, specs []PayloadArtifact, taskExpires time.Time) []RunArtifact {
	var out []RunArtifact
	for _, spec := range specs {
		rel := artifactRel(spec.Path)
		name := spec.Name
		if name == "" {
			// Payload paths may use either separator (payload.go).
			name = strings.ReplaceAll(spec.Path, "\\", "/")
		}
		expires := spec.Expires
		if expires.IsZero() {
			expires = taskExpires
		}
		if msg := checkArtifactPath(spec.Path); msg != "" {
			// Refused at parse time; kept for specs built elsewhere.
			out = append(out, errorArtifact(name, expires, ReasonInvalidResource, "Artifact path "+msg))
			continue
		}
		if spec.Type != DirectoryArtifact {
			out = append(out, resolveFile(root, taskDir, rel, name, expires, spec.ContentType, spec.ContentEncoding))
			continue
		}
		walkTaskDir(root, rel, func(p, sub string) {
			out = append(out, resolveFile(root, taskDir, p, name+"/"+sub, expires, spec.ContentType, spec.ContentEncoding))
		}, func(p, sub string, err error) {
			if sub == "" {
				out = append(out, dirErrorArtifact(name, expires, filepath.Join(taskDir, p), true, err))
				return
			}
			out = append(out, dirErrorArtifact(name+"/"+sub, expires, filepath.Join(taskDir, p), false, err))
		})
	}
	return out
}

func errorArtifact(name string, expires time.Time, reason, message string) RunArtifact {
	return RunArtifact{Kind: KindError, Name: name, Expires: expires, Reason: reason, Message: message}
}

// dirErrorArtifact describes a directory (the payload's, if top) that
// could not be walked, in generic-worker's words where it has some.
func dirErrorArtifact(name string, expires time.Time, full string, top bool, err error) RunArtifact {
	var tfe *taskFileError
	if !errors.As(err, &tfe) {
		return errorArtifact(name, expires, ReasonFileMissing, fmt.Sprintf("Could not read directory '%s': %v", full, err))
	}
	switch {
	case tfe.Reason == ReasonFileMissing:
		return errorArtifact(name, expires, ReasonFileMissing, fmt.Sprintf("Could not read directory '%s'", full))
	case top:
		return errorArtifact(name, expires, tfe.Reason, fmt.Sprintf("Directory artifact '%s' %s", full, tfe.Problem))
	}
	return errorArtifact(name, expires, tfe.Reason, fmt.Sprintf("Directory '%s' %s", full, tfe.Problem))
}

// resolveFile makes the artifact for one file, rel in the task directory,
// guessing content type and encoding from the extension when the payload
// does not say. The file is opened as it will be for the upload, so a
// file that cannot be read is an error artifact before anything is uploaded.
func resolveFile(root *os.Root, taskDir, rel, name string, expires time.Time, contentType, contentEncoding string) RunArtifact {
	full := filepath.Join(taskDir, rel)
	f, _, err := openTaskFile(root, rel)
	if err != nil {
		var tfe *taskFileError
		switch {
		case !errors.As(err, &tfe):
			return errorArtifact(name, expires, ReasonFileMissing, fmt.Sprintf("Could not read file '%s': %v", full, err))
		case tfe.Reason == ReasonFileMissing:
			return errorArtifact(name, expires, ReasonFileMissing, fmt.Sprintf("Could not read file '%s'", full))
		}
		return errorArtifact(name, expires, tfe.Reason, fmt.Sprintf("File artifact '%s' %s", full, tfe.Problem))
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
	return RunArtifact{Kind: KindFile, Name: name, Expires: expires, Path: full, root: root, rel: rel,
		ContentType: contentType, ContentEncoding: contentEncoding}
}

// open opens a KindFile artifact for reading and gives its size: a task's
// file through the task directory's root, with openTaskFile's checks,
// again (the task's processes may have outlived it); the agent's own by
// its path.
func (a RunArtifact) open() (*os.File, int64, error) {
	if a.root != nil {
		f, info, err := openTaskFile(a.root, a.rel)
		if err != nil {
			return nil, 0, fmt.Errorf("open %s: %w", a.Path, err)
		}
		return f, info.Size(), nil
	}
	f, err := os.Open(a.Path)
	if err != nil {
		return nil, 0, fmt.Errorf("open artifact: %w", err)
	}
	info, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, 0, fmt.Errorf("stat artifact: %w", err)
	}
	return f, info.Size(), nil
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
