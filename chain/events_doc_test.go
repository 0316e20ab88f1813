package chain_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// eventAttrs are an event type's attribute keys, indexed or not.
type eventAttrs struct{ indexed, plain []string }

// TestREADMEListsEveryEvent keeps the README's table of events (what
// tx_search queries such as "accounts.transfer.from='…'" can use) equal to
// the events the modules emit: every ctx.Emit (all attributes indexed) and
// the bridge's event(…, attr(key, value, index)…), read from the modules'
// source, with the event type constants they name.
func TestREADMEListsEveryEvent(t *testing.T) {
	emitted := emittedEvents(t, "accounts", "bridge", "teerex", "sidechain")
	documented := documentedEvents(t, filepath.Join("..", "README.md"))
	if len(emitted) < 10 {
		t.Fatalf("found only %d events in the modules' source: %v", len(emitted), slices.Sorted(maps.Keys(emitted)))
	}
	for typ, e := range emitted {
		d, ok := documented[typ]
		switch {
		case !ok:
			t.Errorf("README does not list event %s (indexed %v, not indexed %v)", typ, e.indexed, e.plain)
		case !slices.Equal(d.indexed, e.indexed) || !slices.Equal(d.plain, e.plain):
			t.Errorf("README lists %s with indexed %v, not indexed %v; the module emits indexed %v, not indexed %v", typ, d.indexed, d.plain, e.indexed, e.plain)
		}
	}
	for typ := range documented {
		if _, ok := emitted[typ]; !ok {
			t.Errorf("README lists event %s, which no module emits", typ)
		}
	}
}

// emittedEvents reads the modules' (and their keepers') source.
func emittedEvents(t *testing.T, modules ...string) map[string]eventAttrs {
	t.Helper()
	fset := token.NewFileSet()
	var files []*ast.File
	consts := map[string]string{} // "pkg.EventX" -> type
	for _, m := range modules {
		for _, dir := range []string{m, filepath.Join(m, "keeper")} {
			paths, err := filepath.Glob(filepath.Join(dir, "*.go"))
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range paths {
				if strings.HasSuffix(p, "_test.go") {
					continue
				}
				f, err := parser.ParseFile(fset, p, nil, 0)
				if err != nil {
					t.Fatal(err)
				}
				files = append(files, f)
				for _, d := range f.Decls {
					g, ok := d.(*ast.GenDecl)
					if !ok || g.Tok != token.CONST {
						continue
					}
					for _, s := range g.Specs {
						vs := s.(*ast.ValueSpec)
						for i, n := range vs.Names {
							if strings.HasPrefix(n.Name, "Event") && i < len(vs.Values) {
								if v, ok := stringLit(vs.Values[i]); ok {
									consts[f.Name.Name+"."+n.Name] = v
								}
							}
						}
					}
				}
			}
		}
	}
	out := map[string]eventAttrs{}
	add := func(types []string, indexed, plain []string) {
		for _, typ := range types {
			e := out[typ]
			e.indexed = slices.Compact(slices.Sorted(slices.Values(append(e.indexed, indexed...))))
			e.plain = slices.Compact(slices.Sorted(slices.Values(append(e.plain, plain...))))
			out[typ] = e
		}
	}
	for _, f := range files {
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok || len(call.Args) == 0 {
					return true
				}
				var name string
				switch fun := call.Fun.(type) {
				case *ast.SelectorExpr:
					name = fun.Sel.Name
				case *ast.Ident:
					name = fun.Name
				}
				switch {
				case name == "Emit":
					types := eventTypes(t, fset, fn, f.Name.Name, consts, call.Args[0])
					var keys []string
					for i := 1; i < len(call.Args); i += 2 {
						k, ok := stringLit(call.Args[i])
						if !ok {
							t.Fatalf("%s: Emit with a key that is not a string literal", fset.Position(call.Args[i].Pos()))
						}
						keys = append(keys, k)
					}
					add(types, keys, nil)
				case name == "event" && f.Name.Name == "keeper":
					types := eventTypes(t, fset, fn, f.Name.Name, consts, call.Args[0])
					var indexed, plain []string
					for _, a := range call.Args[1:] {
						ac, ok := a.(*ast.CallExpr)
						if !ok || len(ac.Args) != 3 {
							t.Fatalf("%s: event attribute is not attr(key, value, index)", fset.Position(a.Pos()))
						}
						k, ok := stringLit(ac.Args[0])
						ix, isIdent := ac.Args[2].(*ast.Ident)
						if !ok || !isIdent {
							t.Fatalf("%s: attr with a key or index that is not a literal", fset.Position(a.Pos()))
						}
						if ix.Name == "true" {
							indexed = append(indexed, k)
						} else {
							plain = append(plain, k)
						}
					}
					add(types, indexed, plain)
				}
				return true
			})
		}
	}
	return out
}

// eventTypes resolves an event type argument: a constant, or a local
// variable assigned constants in the function.
func eventTypes(t *testing.T, fset *token.FileSet, fn *ast.FuncDecl, pkg string, consts map[string]string, arg ast.Expr) []string {
	t.Helper()
	resolve := func(e ast.Expr) (string, bool) {
		switch x := e.(type) {
		case *ast.SelectorExpr:
			if p, ok := x.X.(*ast.Ident); ok {
				v, ok := consts[p.Name+"."+x.Sel.Name]
				return v, ok
			}
		case *ast.Ident:
			v, ok := consts[pkg+"."+x.Name]
			return v, ok
		}
		return "", false
	}
	if v, ok := resolve(arg); ok {
		return []string{v}
	}
	id, ok := arg.(*ast.Ident)
	if !ok {
		t.Fatalf("%s: event type is neither a constant nor a variable", fset.Position(arg.Pos()))
	}
	var out []string
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		as, ok := n.(*ast.AssignStmt)
		if !ok {
			return true
		}
		for i, l := range as.Lhs {
			if li, ok := l.(*ast.Ident); ok && li.Name == id.Name && i < len(as.Rhs) {
				v, ok := resolve(as.Rhs[i])
				if !ok {
					t.Fatalf("%s: %s is assigned something other than an event constant", fset.Position(as.Pos()), id.Name)
				}
				out = append(out, v)
			}
		}
		return true
	})
	if len(out) == 0 {
		t.Fatalf("%s: event type %s not resolved", fset.Position(arg.Pos()), id.Name)
	}
	return out
}

func stringLit(e ast.Expr) (string, bool) {
	b, ok := e.(*ast.BasicLit)
	if !ok || b.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(b.Value)
	return s, err == nil
}

// documentedEvents reads the README's event table: rows "| `type` |
// `key`, `key`; not indexed: `key` |".
func documentedEvents(t *testing.T, path string) map[string]eventAttrs {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("^\\| `([a-z_]+\\.[a-z_]+)` \\|(.*)\\|\\s*$")
	key := regexp.MustCompile("`([a-z_]+)`")
	out := map[string]eventAttrs{}
	for _, line := range strings.Split(string(b), "\n") {
		m := row.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		idx, plain, _ := strings.Cut(m[2], "not indexed:")
		var e eventAttrs
		for _, k := range key.FindAllStringSubmatch(idx, -1) {
			e.indexed = append(e.indexed, k[1])
		}
		for _, k := range key.FindAllStringSubmatch(plain, -1) {
			e.plain = append(e.plain, k[1])
		}
		slices.Sort(e.indexed)
		slices.Sort(e.plain)
		if _, dup := out[m[1]]; dup {
			t.Fatalf("README lists %s twice", m[1])
		}
		out[m[1]] = e
	}
	return out
}
