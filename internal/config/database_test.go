package config

import "testing"

// PgBouncer in transaction mode is set up from the environment like any key:
// ERRAND_DATABASE__POLL_ONLY, beside ERRAND_DATABASE__URL.
func TestDatabaseFromTheEnvironment(t *testing.T) {
	c, err := Load("", false, []string{
		"ERRAND_DATABASE__URL=postgres://errand:pw@db.internal:6432/errand",
		"ERRAND_DATABASE__POLL_ONLY=true",
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Database.URL != "postgres://errand:pw@db.internal:6432/errand" || !c.Database.PollOnly {
		t.Fatalf("database settings from the environment: %+v", c.Database)
	}
	if d := Default(); d.Database.PollOnly || d.Database.URL != "file:errand.db" {
		t.Fatalf("defaults: %+v (want SQLite, listening)", d.Database)
	}
}
