package store_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/errandhq/errand/internal/store"
	"github.com/errandhq/errand/internal/store/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// backend opens a fresh, migrated database of one kind.
type backend struct {
	name string
	url  func(t testing.TB) string
}

// backends are the two databases errand runs on: every store test runs
// against both.
var backends = []backend{
	{"sqlite", func(t testing.TB) string { return "file:" + filepath.Join(t.TempDir(), "errand.db") }},
	{"postgres", pgtest.URL},
}

// eachBackend runs test once per backend, each with a fresh migrated
// database; url opens it again, as another process would.
func eachBackend(t *testing.T, test func(t *testing.T, url string, st store.Store)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			url := b.url(t)
			test(t, url, openMigrated(t, url))
		})
	}
}

func openMigrated(t testing.TB, url string) store.Store {
	t.Helper()
	st, err := store.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}
