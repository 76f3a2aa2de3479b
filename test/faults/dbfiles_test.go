package faults

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// opensFile are the calls that open (and later close) a descriptor on a
// path.
var opensFile = map[string]bool{"Open": true, "OpenFile": true, "ReadFile": true, "WriteFile": true, "Create": true, "Truncate": true}

// livePath matches how the code names the live database and its -wal and
// -shm files.
var livePath = regexp.MustCompile(`Data\.DB|\bdbPath\b|\bDBPath\b|"-wal"|"-shm"`)

// Item 27: SQLite's POSIX locks belong to the process and vanish when any
// descriptor on the same file is closed, so hubd's own code must never
// open the live database (or its -wal or -shm) beside SQLite: no os.Open,
// ReadFile, WriteFile, Create or Truncate of it anywhere outside tests.
// Stat, Chmod and Rename take no descriptor and are fine.
func TestNoFileHandlesOnTheLiveDatabase(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		checked++
		ast.Inspect(src, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || !opensFile[sel.Sel.Name] || len(call.Args) == 0 {
				return true
			}
			if pkg, ok := sel.X.(*ast.Ident); !ok || pkg.Name != "os" {
				return true
			}
			if text := exprText(call.Args[0]); livePath.MatchString(text) {
				rel, _ := filepath.Rel(root, path)
				t.Errorf("%s:%d: os.%s(%s) opens the live database beside SQLite", rel, fset.Position(call.Pos()).Line, sel.Sel.Name, text)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 100 {
		t.Fatalf("checked only %d files: wrong root %s?", checked, root)
	}
}

// exprText renders the identifiers, selectors and literals of an
// expression, which is all livePath looks at.
func exprText(e ast.Expr) string {
	var b strings.Builder
	ast.Inspect(e, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.SelectorExpr:
			b.WriteString(exprText(x.X) + "." + x.Sel.Name + " ")
			return false
		case *ast.Ident:
			b.WriteString(x.Name + " ")
		case *ast.BasicLit:
			b.WriteString(x.Value + " ")
		}
		return true
	})
	return strings.TrimSpace(b.String())
}
