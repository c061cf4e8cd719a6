package mounts

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func raws(t *testing.T, s string) []json.RawMessage {
	t.Helper()
	var out []json.RawMessage
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestParseKindsAndProblems(t *testing.T) {
	ms, probs := Parse(raws(t, `[
		{"file": "a/b.txt", "content": {"raw": "x"}},
		{"directory": "tools", "format": "zip", "content": {"taskId": "AAAAAAAAQAmAAAAAAAAAAA", "artifact": "public/t.zip", "sha256": "`+strings.Repeat("0", 64)+`"}},
		{"directory": "cache", "cacheName": "c1"},
		{"file": "../outside", "content": {"raw": "x"}},
		{"directory": "/abs", "format": "zip", "content": {"url": "http://x/y"}},
		{"file": "b64", "content": {"base64": "@@@"}}
	]`))
	if len(ms) != 6 {
		t.Fatalf("%d mounts", len(ms))
	}
	if ms[0].Kind != FileMount || ms[1].Kind != ReadOnlyDirectory || ms[2].Kind != WritableCache || ms[2].CacheName != "c1" {
		t.Errorf("kinds: %+v", ms[:3])
	}
	if ms[1].Content.TaskID != "AAAAAAAAQAmAAAAAAAAAAA" || ms[1].Format != Zip {
		t.Errorf("artifact mount: %+v", ms[1])
	}
	var fields []string
	for _, p := range probs {
		fields = append(fields, p.Field)
	}
	want := []string{"payload.mounts[3].file", "payload.mounts[4].directory", "payload.mounts[5].content.base64"}
	if !slices.Equal(fields, want) {
		t.Errorf("problems on %v, want %v (%v)", fields, want, probs)
	}
}

func TestScopesAndDependencies(t *testing.T) {
	ms := []Mount{
		{Kind: WritableCache, CacheName: "a"},
		{Kind: WritableCache, CacheName: "b"},
		{Kind: ReadOnlyDirectory, Content: &Content{TaskID: "T1", Artifact: "x"}},
		{Kind: FileMount, Content: &Content{TaskID: "T2", Artifact: "y"}},
	}
	if got := MissingScopes(ms, []string{"generic-worker:cache:a"}); !slices.Equal(got, []string{"generic-worker:cache:b"}) {
		t.Errorf("missing scopes %v", got)
	}
	if got := MissingScopes(ms, []string{"generic-worker:cache:*"}); len(got) != 0 {
		t.Errorf("a * scope does not cover: %v", got)
	}
	if got := MissingScopes(ms, []string{"generic-worker:cache:ab*"}); len(got) != 2 {
		t.Errorf("a narrower * scope covers too much: %v", got)
	}
	if got := MissingDependencies(ms, []string{"T1"}); !slices.Equal(got, []string{"T2"}) {
		t.Errorf("missing dependencies %v", got)
	}
}
