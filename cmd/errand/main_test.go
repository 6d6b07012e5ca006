package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/errandhq/errand/internal/store/pgtest"
)

// TestMain runs the package's tests with one PostgreSQL server, stopped
// when they end, and removes the errand binary errandBinary built (45 MB a
// run, left in the temporary directory otherwise).
func TestMain(m *testing.M) {
	code := pgtest.Main(m)
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}
