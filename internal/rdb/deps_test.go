package rdb_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// internal/rdb is the only package that knows asynq's private layout: no
// other program file builds one of its keys, names errand's own keys or
// channel, or runs a Lua script; and the HTTP side and the CLI do not import
// asynq at all (the dashboard, asynqmon, does, and is allowed to).
func TestOnlyRdbKnowsTheLayout(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}|{{.Dir}}|{{join .GoFiles ","}}|{{join .Imports ","}}`,
		"github.com/errandhq/errand/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const self = "github.com/errandhq/errand/internal/rdb"
	noAsynq := map[string]bool{"github.com/errandhq/errand/internal/web": true, "github.com/errandhq/errand/cmd/errand": true}
	layout := []string{`"asynq:`, `"errand:{`, `"errand:wake`, `"errand:metrics`, "NewScript(", ".Eval(", ".EvalSha(", ".EvalRO(", ".EvalShaRO("}
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "|")
		if len(f) != 4 {
			t.Fatalf("go list line %q", line)
		}
		pkg, dir, files, imports := f[0], f[1], f[2], f[3]
		seen++
		if noAsynq[pkg] {
			for _, imp := range strings.Split(imports, ",") {
				if imp == "github.com/hibiken/asynq" {
					t.Errorf("%s imports asynq; it should go through internal/rdb (or queue)", pkg)
				}
			}
		}
		if pkg == self || files == "" {
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
}
