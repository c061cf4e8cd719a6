package agent

// features.chainOfTrust, as generic-worker's chain_of_trust.go (at v44.23.4)
// does it, after the payload artifacts are uploaded:
//
//	task log so far ──copy──▶ public/logs/certified.log
//	payload file artifacts + certified.log ──SHA-256──▶ public/chain-of-trust.json (cot.Document)
//	──ed25519 signature with the worker's key──▶ public/chain-of-trust.json.sig
//
// The three names are reserved: a payload artifact with one of them is not
// uploaded, so a task cannot publish a document of its own making. The
// files are written outside the task directory, where the task cannot
// have prepared a symlink for the agent to write through.

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/labrunner/labrunner/agent/cot"
	"github.com/labrunner/labrunner/platform"
)

// errNoChainOfTrustKey refuses the feature on a worker without a key.
var errNoChainOfTrustKey = errors.New("payload.features.chainOfTrust: this worker has no chain-of-trust signing key (chainOfTrust.ed25519SigningKey in its config, see docs/config.md); remove the feature or run the task on a worker that signs")

// chainOfTrustFeature is the feature's name in log lines, as upstream's.
const chainOfTrustFeature = "Chain of Trust"

// reservedArtifacts maps the artifact names the run's features publish
// themselves to the feature.
func reservedArtifacts(spec *Payload) map[string]string {
	out := map[string]string{}
	if spec.ChainOfTrust {
		for _, n := range cot.ReservedNames {
			out[n] = chainOfTrustFeature
		}
	}
	return out
}

// publishChainOfTrust publishes certified.log, the document and its
// signature; published are the payload artifacts uploaded.
func (a *Agent) publishChainOfTrust(ctx context.Context, run Run, tl *taskLog, published []RunArtifact, expires time.Time, o *outcome) {
	dir, err := os.MkdirTemp(a.cfg.TasksDir, "cot_")
	if err != nil {
		o.internal = fmt.Errorf("chain of trust: make a directory for its files: %w", err)
		tl.Printf("Chain of trust: %v", o.internal)
		return
	}
	defer os.RemoveAll(dir)

	tl.Printf("Chain of trust: signing %d artifact(s) and the task log", len(published))
	certified := filepath.Join(dir, "certified.log")
	if err := copyFile(tl.path, certified); err != nil {
		o.internal = fmt.Errorf("chain of trust: copy the task log: %w", err)
		tl.Printf("Chain of trust: %v", o.internal)
		return
	}
	logArt := RunArtifact{Kind: KindFile, Name: cot.CertifiedLogName, Path: certified, ContentType: logContentType, ContentEncoding: "gzip", Expires: expires}
	if !a.publishOne(ctx, run, tl, logArt, o) {
		return
	}

	doc := &cot.Document{
		Version:     cot.Version,
		Artifacts:   map[string]cot.ArtifactHash{},
		Task:        *run.Task(),
		TaskID:      run.TaskID(),
		RunID:       uint(run.RunID()),
		WorkerGroup: a.cfg.WorkerGroup,
		WorkerID:    a.cfg.WorkerID,
		Environment: a.cfg.ChainOfTrustEnvironment,
	}
	for _, art := range append(slices.Clone(published), logArt) {
		if art.Kind != KindFile {
			continue
		}
		sum, err := artifactSHA256(art)
		if err != nil {
			o.internal = fmt.Errorf("chain of trust: artifact %s: %w", art.Name, err)
			tl.Printf("Chain of trust: %v", o.internal)
			return
		}
		doc.Artifacts[art.Name] = cot.ArtifactHash{SHA256: sum}
	}
	body, err := doc.Marshal()
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "chain-of-trust.json"), body, 0o644)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "chain-of-trust.json.sig"), cot.Sign(a.cfg.ChainOfTrustKey, body), 0o644)
	}
	if err != nil {
		o.internal = fmt.Errorf("chain of trust: write the document: %w", err)
		tl.Printf("Chain of trust: %v", o.internal)
		return
	}
	if !a.publishOne(ctx, run, tl, RunArtifact{Kind: KindFile, Name: cot.DocumentName, Path: filepath.Join(dir, "chain-of-trust.json"),
		ContentType: logContentType, ContentEncoding: "gzip", Expires: expires}, o) {
		return
	}
	a.publishOne(ctx, run, tl, RunArtifact{Kind: KindFile, Name: cot.SignatureName, Path: filepath.Join(dir, "chain-of-trust.json.sig"),
		ContentType: "application/octet-stream", ContentEncoding: "gzip", Expires: expires}, o)
}

// artifactSHA256 digests a file artifact as it is opened for its upload:
// a task's file through the task directory's root (RunArtifact.open).
func artifactSHA256(a RunArtifact) (string, error) {
	f, size, err := a.open()
	if err != nil {
		return "", err
	}
	defer f.Close()
	return cot.ReaderSHA256(io.NewSectionReader(f, 0, size))
}

// copyFile copies one of the agent's own files (the task log) to a new
// file dst.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, cerr := io.Copy(out, in)
	return firstErr(cerr, out.Close())
}

// publishOne uploads one artifact of the agent's own; a failure is
// recorded in o as payload artifact failures are.
func (a *Agent) publishOne(ctx context.Context, run Run, tl *taskLog, art RunArtifact, o *outcome) bool {
	tl.Printf("Uploading artifact %s (%s, %s)", art.Name, art.ContentType, art.ContentEncoding)
	if err := run.Publish(ctx, art); err != nil {
		tl.Printf("Artifact %s failed: %v", art.Name, err)
		recordArtifactFailure(art.Name, err, o)
		return false
	}
	return true
}

// loadSigningKey reads the chain-of-trust key and, as generic-worker does
// at start (fileutil.SecureFiles), restricts its file to the service's
// account (platform.RestrictToServiceAccount: 0600, or a protected DACL on
// Windows), logging a repair.
func loadSigningKey(path string, log *slog.Logger) (ed25519.PrivateKey, error) {
	key, err := cot.ReadPrivateKey(path)
	if err != nil {
		return nil, err
	}
	repaired, err := platform.RestrictToServiceAccount(path)
	if err != nil {
		return nil, fmt.Errorf("keep the ed25519 signing key private: %w", err)
	}
	if repaired != "" {
		log.Warn("repaired permissions: the chain-of-trust signing key was open to other accounts", "path", path, "change", repaired)
	}
	return key, nil
}

// localAddressToward is the address of the interface this machine reaches
// rootURL through, for the document's privateIpAddress ("" if unknown).
// Dialing UDP sends nothing.
func localAddressToward(rootURL string) string {
	u, err := url.Parse(rootURL)
	if err != nil || u.Hostname() == "" {
		return ""
	}
	port := u.Port()
	if port == "" {
		port = "443"
	}
	conn, err := net.Dial("udp", net.JoinHostPort(u.Hostname(), port))
	if err != nil {
		return ""
	}
	defer conn.Close()
	if a, ok := conn.LocalAddr().(*net.UDPAddr); ok {
		return a.IP.String()
	}
	return ""
}
