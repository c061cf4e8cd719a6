package cot

// The document's Go types are compared, field for field, with
// generic-worker's own (workers/generic-worker/chain_of_trust.go in the
// taskcluster v44 module labrunner builds with): generic-worker's engine that
// builds here (simple) has no chain of trust to run side by side.

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// upstreamStructs parses chain_of_trust.go and returns, per struct type,
// its fields as "Name Type `tag`".
func upstreamStructs(t *testing.T) map[string][]string {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to find the taskcluster module (e.g. under Wine)")
	}
	out, err := exec.Command(goCmd, "list", "-m", "-f", "{{.Dir}}", "github.com/taskcluster/taskcluster/v44").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		t.Skipf("taskcluster v44 module not in the module cache: %v", err)
	}
	file := filepath.Join(strings.TrimSpace(string(out)), "workers", "generic-worker", "chain_of_trust.go")
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		t.Fatalf("parse %s: %v", file, err)
	}
	structs := map[string][]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok {
			return true
		}
		st, ok := ts.Type.(*ast.StructType)
		if !ok {
			return true
		}
		var fields []string
		for _, fl := range st.Fields.List {
			tag := ""
			if fl.Tag != nil {
				tag = fl.Tag.Value
			}
			for _, name := range fl.Names {
				fields = append(fields, name.Name+" "+types(fl.Type)+" "+tag)
			}
		}
		structs[ts.Name.Name] = fields
		return true
	})
	return structs
}

// types renders a field type as Go source, e.g. map[string]ArtifactHash.
func types(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.Ident:
		return x.Name
	case *ast.SelectorExpr:
		return types(x.X) + "." + x.Sel.Name
	case *ast.MapType:
		return "map[" + types(x.Key) + "]" + types(x.Value)
	case *ast.StarExpr:
		return "*" + types(x.X)
	case *ast.ArrayType:
		return "[]" + types(x.Elt)
	}
	return "?"
}

// ours renders our struct the same way, with upstream's type names.
func ours(v any, rename map[string]string) []string {
	rt := reflect.TypeOf(v)
	var fields []string
	for i := range rt.NumField() {
		f := rt.Field(i)
		typ := f.Type.String()
		for from, to := range rename {
			typ = strings.ReplaceAll(typ, from, to)
		}
		fields = append(fields, f.Name+" "+typ+" `"+string(f.Tag)+"`")
	}
	return fields
}

func TestDocumentMatchesGenericWorkerSource(t *testing.T) {
	up := upstreamStructs(t)
	rename := map[string]string{"cot.ArtifactHash": "ArtifactHash", "cot.Environment": "CoTEnvironment"}
	for _, c := range []struct {
		upstream string
		ours     any
	}{
		{"ChainOfTrustData", Document{}},
		{"CoTEnvironment", Environment{}},
		{"ArtifactHash", ArtifactHash{}},
	} {
		want, ok := up[c.upstream]
		if !ok {
			t.Errorf("generic-worker's chain_of_trust.go has no struct %s", c.upstream)
			continue
		}
		got := ours(c.ours, rename)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%T differs from generic-worker's %s:\nours:\n  %s\nupstream:\n  %s", c.ours, c.upstream, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
	}
}
