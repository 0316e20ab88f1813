package ed25519x_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// directVerifies returns the positions in f where a Verify* function of an
// ed25519 package (crypto/ed25519, x/crypto, CometBFT's, curve25519-voi's)
// is used, under whatever name the file imports it.
func directVerifies(fset *token.FileSet, f *ast.File) []string {
	names := map[string]bool{}
	for _, imp := range f.Imports {
		p, err := strconv.Unquote(imp.Path.Value)
		if err != nil || path.Base(p) != "ed25519" {
			continue
		}
		name := "ed25519"
		if imp.Name != nil {
			name = imp.Name.Name
		}
		names[name] = true
	}
	var found []string
	ast.Inspect(f, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if x, ok := sel.X.(*ast.Ident); ok && names[x.Name] && strings.HasPrefix(sel.Sel.Name, "Verify") {
			found = append(found, fset.Position(sel.Pos()).String())
		}
		return true
	})
	return found
}

func TestDirectVerifiesDetected(t *testing.T) {
	for _, src := range []string{
		`package p; import "crypto/ed25519"; var _ = ed25519.Verify(nil, nil, nil)`,
		`package p; import e "crypto/ed25519"; var f = e.VerifyWithOptions`,
		`package p; import "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"; var f = ed25519.Verify`,
	} {
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, "p.go", src, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		if len(directVerifies(fset, f)) != 1 {
			t.Errorf("not detected: %s", src)
		}
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "p.go", `package p; import "crypto/ed25519"; var _ = ed25519.Sign // ed25519.Verify`, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	if got := directVerifies(fset, f); len(got) != 0 {
		t.Errorf("false positive: %v", got)
	}
}

// TestOneVerificationPath fails if any non-test Go file of the module
// verifies an ed25519 signature other than through this package: a direct
// ed25519.Verify would accept small-order keys again.
func TestOneVerificationPath(t *testing.T) {
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	self, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	files := 0
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if p != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "vendor") || p == self {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		files++
		for _, pos := range directVerifies(fset, f) {
			t.Errorf("%s: verify ed25519 signatures with ed25519x.Verify", pos)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A walk that found nothing would pass vacuously.
	if files < 100 {
		t.Fatalf("walked only %d files from %s", files, root)
	}
}

func moduleRoot() (string, error) {
	dir, err := filepath.Abs(".")
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
}
