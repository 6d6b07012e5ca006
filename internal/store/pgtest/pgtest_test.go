package pgtest_test

import (
	"context"
	"os"
	"testing"

	"github.com/errandhq/errand/internal/store/pgtest"
	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// Each test gets a database of its own, on a server that asks for the
// password its URLs carry.
func TestDatabasesAreFreshAndSeparate(t *testing.T) {
	ctx := context.Background()
	a, b := pgtest.URL(t), pgtest.URL(t)
	if a == b {
		t.Fatalf("two tests share %s", a)
	}
	ca, err := pgx.Connect(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close(ctx)
	if _, err := ca.Exec(ctx, `CREATE TABLE mine (x int)`); err != nil {
		t.Fatal(err)
	}
	cb, err := pgx.Connect(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close(ctx)
	var n int
	if err := cb.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE tablename = 'mine'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("another test's table is visible: %d %v", n, err)
	}
	var version string
	if err := cb.QueryRow(ctx, `SHOW server_version`).Scan(&version); err != nil {
		t.Fatal(err)
	}
	t.Logf("PostgreSQL %s", version)
	s := pgtest.Start(t)
	if _, err := pgx.Connect(ctx, "postgres://postgres:wrong@"+s.Addr()+"/postgres?sslmode=disable"); err == nil {
		t.Fatal("a wrong password was accepted: the URLs' passwords are not checked")
	}
}
