package rdb_test

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// internal/rdb is the only package that knows asynq's private layout: no
// other program file builds one of its keys, names errand's own keys or
// channel, or runs a Lua script; no .lua file lies outside it, and each of
// its own is embedded (none is left behind unused); and the HTTP side and
// the CLI do not import asynq at all (the dashboard, asynqmon, does, and is
// allowed to).
func TestOnlyRdbKnowsTheLayout(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}|{{.Dir}}|{{join .GoFiles ","}}|{{join .Imports ","}}|{{join .EmbedFiles ","}}`,
		"github.com/errandhq/errand/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const self = "github.com/errandhq/errand/internal/rdb"
	noAsynq := map[string]bool{"github.com/errandhq/errand/internal/web": true, "github.com/errandhq/errand/cmd/errand": true}
	layout := []string{`"asynq:`, `"errand:{`, `"errand:wake`, `"errand:metrics`, "NewScript(", ".Eval(", ".EvalSha(", ".EvalRO(", ".EvalShaRO("}
	seen := 0
	var selfDir string
	embedded := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "|")
		if len(f) != 5 {
			t.Fatalf("go list line %q", line)
		}
		pkg, dir, files, imports := f[0], f[1], f[2], f[3]
		seen++
		// rdb's sub-packages (its stored message, errand's own shared
		// limits) are rdb too: they may build keys and run scripts.
		inRdb := pkg == self || strings.HasPrefix(pkg, self+"/")
		if pkg == self {
			selfDir = dir
		}
		if inRdb && f[4] != "" {
			for _, e := range strings.Split(f[4], ",") {
				embedded[filepath.Join(dir, e)] = true
			}
		}
		if noAsynq[pkg] {
			for _, imp := range strings.Split(imports, ",") {
				if imp == "github.com/hibiken/asynq" {
					t.Errorf("%s imports asynq; it should go through internal/rdb (or queue)", pkg)
				}
			}
		}
		if inRdb || files == "" {
			continue
		}
		for _, name := range strings.Split(files, ",") {
			src, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range layout {
				if strings.Contains(string(src), s) {
					t.Errorf("%s/%s holds %s: keys, channels and scripts belong in internal/rdb", pkg, name, s)
				}
			}
		}
	}
	if seen < 10 {
		t.Fatalf("go list listed %d packages; the check saw too little", seen)
	}
	scripts := 0
	err = filepath.WalkDir(moduleRoot(t), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		if d.IsDir() || filepath.Ext(path) != ".lua" {
			return nil
		}
		scripts++
		switch {
		case !strings.HasPrefix(path, selfDir+string(filepath.Separator)):
			t.Errorf("%s is a Lua script outside internal/rdb: scripts belong in internal/rdb/lua", path)
		case !embedded[path]:
			t.Errorf("%s is embedded by no file of internal/rdb: no script runs it", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if scripts < len(embedded) || scripts == 0 {
		t.Fatalf("the walk found %d .lua files, rdb embeds %d; the check saw too little", scripts, len(embedded))
	}
}

// No package under internal/ holds more than 2,000 lines of non-test Go
// (issue #9): past that a package does too much to be read as one. Every
// non-test .go file of its directory counts, whatever its build tags.
func TestNoInternalPackageOverTwoThousandLines(t *testing.T) {
	const limit = 2000
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}|{{.Dir}}", "github.com/errandhq/errand/internal/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	pkgs := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(pkgs) < 10 {
		t.Fatalf("go list listed %d packages under internal/; the check saw too little", len(pkgs))
	}
	for _, line := range pkgs {
		pkg, dir, ok := strings.Cut(line, "|")
		if !ok {
			t.Fatalf("go list line %q", line)
		}
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		lines := 0
		for _, name := range files {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			src, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			lines += strings.Count(string(src), "\n")
		}
		if lines > limit {
			t.Errorf("%s holds %d lines of non-test Go, more than %d: split it", pkg, lines, limit)
		}
	}
}

// moduleRoot is the directory of errand's go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -m: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}
