//go:build unix

package store

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// withUmask runs the test under the usual umask 022, which leaves files
// SQLite creates readable by every user.
func withUmask(t *testing.T) {
	old := syscall.Umask(0o022)
	t.Cleanup(func() { syscall.Umask(old) })
}

func assertOwnerOnly(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("stat %s: %v", p, err)
		}
		if mode := fi.Mode().Perm(); mode != 0o600 {
			t.Errorf("%s has mode %#o; another user on the machine can read it (want 0600)", filepath.Base(p), mode)
		}
	}
}

// Another user on the machine reads neither the database (bcrypt hashes,
// personal data, callback tokens) nor its WAL, which holds the latest writes.
func TestDatabaseFilesAreOwnerOnly(t *testing.T) {
	withUmask(t)
	path := filepath.Join(t.TempDir(), "errand.db")
	st, err := Open("file:" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The WAL and shared-memory files exist while the database is open.
	assertOwnerOnly(t, path, path+"-wal", path+"-shm")
}

// A database an older errand left readable by everyone is tightened when it
// is opened, with its WAL.
func TestOpenTightensAnExistingDatabase(t *testing.T) {
	withUmask(t)
	path := filepath.Join(t.TempDir(), "errand.db")
	st, err := Open("file:" + path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	st.Close()
	// An empty WAL left behind, which SQLite ignores.
	if err := os.WriteFile(path+"-wal", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal"} {
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	st, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	assertOwnerOnly(t, path, path+"-wal")
	if applied, err := st.Migrate(context.Background()); err != nil || len(applied) != 0 {
		t.Fatalf("the tightened database lost its schema: applied %v, %v", applied, err)
	}
}

func TestDBPath(t *testing.T) {
	for dsn, want := range map[string]string{
		"file:errand.db":                           "errand.db",
		"file:/var/lib/errand/errand.db":           "/var/lib/errand/errand.db",
		"file:///var/lib/errand/errand.db?cache=x": "/var/lib/errand/errand.db",
		"file://localhost/srv/e.db":                "/srv/e.db",
		"file:data/my%20shop.db#frag":              "data/my shop.db",
		"file::memory:":                            "",
		"file:x.db?mode=memory&cache=shared":       "",
		"file:x.db?mode=ro":                        "",
		"file:/x.db?vfs=memdb":                     "",
		"file:":                                    "",
	} {
		got, ok := dbPath(dsn)
		if got != want || ok != (want != "") {
			t.Errorf("dbPath(%q) = %q, %v; want %q", dsn, got, ok, want)
		}
	}
}
