package agent

import (
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

func TestResolveArtifacts(t *testing.T) {
	dir := testTempDir(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "out", "sub"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "out", "a.html"), []byte("x"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "out", "sub", "b.png"), []byte("x"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "build.log"), []byte("x"), 0o644))
	expires := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	own := expires.Add(-time.Minute)
	root, err := os.OpenRoot(dir)
	must(err)
	defer root.Close()
	got := resolveArtifacts(root, dir, []PayloadArtifact{
		{Type: FileArtifact, Path: "build.log"},
		{Type: DirectoryArtifact, Path: "out", Name: "public/out", Expires: own},
		{Type: FileArtifact, Path: "nope.txt", Name: "public/nope.txt"},
		{Type: FileArtifact, Path: "out", Name: "public/dir-as-file"},
		{Type: DirectoryArtifact, Path: "build.log", Name: "public/file-as-dir"},
		{Type: FileArtifact, Path: "build.log", Name: "public/forced", ContentType: "application/x-custom", ContentEncoding: "identity"},
	}, expires)
	byName := map[string]RunArtifact{}
	var names []string
	for _, a := range got {
		byName[a.Name] = a
		names = append(names, a.Name)
	}
	sort.Strings(names)
	want := map[string]struct {
		kind       ArtifactKind
		ctype, enc string
		reason     string
		expires    time.Time
	}{
		"build.log":            {KindFile, "text/plain", "gzip", "", expires},
		"public/out/a.html":    {KindFile, "text/html; charset=utf-8", "gzip", "", own},
		"public/out/sub/b.png": {KindFile, "image/png", "identity", "", own},
		"public/nope.txt":      {KindError, "", "", ReasonFileMissing, expires},
		"public/dir-as-file":   {KindError, "", "", ReasonInvalidResource, expires},
		"public/file-as-dir":   {KindError, "", "", ReasonInvalidResource, expires},
		"public/forced":        {KindFile, "application/x-custom", "identity", "", expires},
	}
	if len(got) != len(want) {
		t.Fatalf("got artifacts %v, want %d", names, len(want))
	}
	for name, w := range want {
		a, ok := byName[name]
		if !ok {
			t.Errorf("missing %s (got %v)", name, names)
			continue
		}
		if a.Kind != w.kind || a.ContentType != w.ctype || a.ContentEncoding != w.enc || a.Reason != w.reason || !a.Expires.Equal(w.expires) {
			t.Errorf("%s = %+v, want %+v", name, a, w)
		}
	}
}
