//go:build unix

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Under the usual umask 022, a database `errand migrate` creates, and the
// WAL and shared-memory files `errand serve` keeps beside it, are readable by
// errand's user only: they hold bcrypt hashes, personal data and callback
// tokens, which another account on the machine must not read.
func TestDatabaseFilesAreOwnerOnly(t *testing.T) {
	t.Parallel()
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	ownerOnly := func(paths ...string) {
		t.Helper()
		for _, p := range paths {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatalf("stat %s: %v", p, err)
			}
			if mode := fi.Mode().Perm(); mode != 0o600 {
				t.Errorf("%s has mode %#o, readable by other users (want 0600)", filepath.Base(p), mode)
			}
		}
	}

	dir := t.TempDir()
	db := filepath.Join(dir, "errand.db")
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("[database]\nurl = %q\n", "file:"+db)), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"migrate", "--config", cfg}, nil, &out, &out); err != nil {
		t.Fatalf("errand migrate: %v\n%s", err, out.String())
	}
	ownerOnly(db)

	s := startStack(t, stackOptions{noWorker: true})
	if code, body := s.post("/api/users", registration("ada@shop.test"), nil); code != 201 {
		t.Fatalf("register: %d %v", code, body)
	}
	served := filepath.Join(s.dir, "errand.db")
	ownerOnly(served, served+"-wal", served+"-shm")
}
