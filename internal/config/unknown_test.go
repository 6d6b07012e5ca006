package config

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/knadh/koanf/parsers/toml/v2"
)

// A typo in config.toml stops errand with one line naming the key and the
// closest key errand has; free names (queues, job types, reps, services)
// are taken as they are, and the keys under them are checked.
func TestUnknownFileKeyNamesTheClosestKey(t *testing.T) {
	for _, tc := range []struct{ name, file, want string }{
		{"typo", "[smtp]\nhots = \"mail\"\n", "unknown key smtp.hots (the closest known key is smtp.host)"},
		{"unknown table", "[smpt]\nhost = \"mail\"\n", "unknown key smpt (the closest known key is smtp)"},
		{"top-level key", "concurency = 3\n", "unknown key concurency (the closest known key is"},
		{"under a job type", "[jobs.\"user:welcome_email\"]\nmax_attempt = 5\n",
			`unknown key jobs."user:welcome_email".max_attempt (the closest known key is jobs."user:welcome_email".max_attempts)`},
		{"under a rep", "[notify.reps.alice]\nslack_webhook = \"https://hooks.slack.com/x\"\n",
			"unknown key notify.reps.alice.slack_webhook (the closest known key is notify.reps.alice.slack_webhook_url)"},
		{"under a limit", "[limits.tidio]\nrate = \"10/1m\"\nburts = 2\n", "unknown key limits.tidio.burts (the closest known key is limits.tidio.burst)"},
		{"two at once", "[worker]\nconcurency = 3\n[http]\nadr = \":9\"\n",
			"unknown key http.adr (the closest known key is http.addr); unknown key worker.concurency (the closest known key is worker.concurrency)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(writeFile(t, tc.file), true, nil, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("got %v\nwant one line with %q", err, tc.want)
			}
		})
	}
	// Free names are any names.
	good := "[queues]\nreports = 2\n[jobs.\"user:welcome_email\"]\nmax_attempts = 5\n[jobs.\"report:build\"]\nqueue = \"reports\"\n" +
		"[notify.reps.bob]\nname = \"Bob\"\n[limits.slack]\nrate = \"5/1s\"\n"
	c, err := Load(writeFile(t, good), true, nil, nil)
	if err != nil {
		t.Fatalf("a config with free names: %v", err)
	}
	if c.Queues["reports"] != 2 || c.Jobs["report:build"].Queue != "reports" || c.Notify.Reps["bob"].Name != "Bob" {
		t.Fatalf("free names not read: %+v", c)
	}
}

// The keys are Config's koanf tags, whatever is added to it: a table of
// tables by name, a list of tables, a free map inside a table.
func TestUnknownKeysFollowTheStruct(t *testing.T) {
	type event struct {
		Jobs []string `koanf:"jobs"`
	}
	type entry struct {
		Type    string         `koanf:"type"`
		Every   time.Duration  `koanf:"every"`
		Payload map[string]any `koanf:"payload"`
	}
	type common struct {
		Enabled bool `koanf:"enabled"`
	}
	type cfg struct {
		common   `koanf:",squash"`
		Events   map[string]event `koanf:"events"`
		Schedule []entry          `koanf:"schedule"`
		History  struct {
			Keep time.Duration `koanf:"keep"`
		} `koanf:"history"`
	}
	raw := func(s string) map[string]any {
		m, err := toml.Parser().Unmarshal([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	ok := "enabled = true\n[history]\nkeep = \"720h\"\n[events.\"user.registered\"]\njobs = [\"a\"]\n" +
		"[[schedule]]\ntype = \"a\"\nevery = \"1h\"\npayload = {anything = 1, at = {all = 2}}\n[[schedule]]\ntype = \"b\"\n"
	if bad := unknownKeys(raw(ok), reflect.TypeFor[cfg]()); len(bad) != 0 {
		t.Fatalf("known keys refused: %v", bad)
	}
	typo := "[history]\nkep = \"720h\"\n[events.\"user.registered\"]\njob = [\"a\"]\n[[schedule]]\ntype = \"a\"\n[[schedule]]\ntyp = \"b\"\n"
	got := strings.Join(unknownKeys(raw(typo), reflect.TypeFor[cfg]()), "; ")
	want := `unknown key events."user.registered".job (the closest known key is events."user.registered".jobs); ` +
		"unknown key history.kep (the closest known key is history.keep); " +
		"unknown key schedule[1].typ (the closest known key is schedule[1].type)"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

// An ERRAND_ variable that names no setting stops errand, naming the
// closest; variables outside errand's sections are left alone.
func TestUnknownEnvironmentVariable(t *testing.T) {
	for _, tc := range []struct{ env, want string }{
		{"ERRAND_SMTP__HOTS=x", "ERRAND_SMTP__HOTS is not a setting (did you mean ERRAND_SMTP__HOST?)"},
		{"ERRAND_SMPT__HOST=x", "ERRAND_SMPT__HOST is not a setting (did you mean ERRAND_SMTP__HOST?)"},
		{"ERRAND_SMTP_HOST=x", "ERRAND_SMTP_HOST is not a setting (did you mean ERRAND_SMTP__HOST?)"},
		{"ERRAND_API_TOKENS=x", "ERRAND_API_TOKENS is not a setting (did you mean ERRAND_API__TOKENS?)"},
		{"ERRAND_NOTIFY__REPS__ALICE__SLACK=x", "ERRAND_NOTIFY__REPS__ALICE__SLACK is not a setting (did you mean ERRAND_NOTIFY__REPS__ALICE__NAME?)"},
		{"ERRAND_SMTP__PORT__X=1", "ERRAND_SMTP__PORT__X is not a setting (did you mean ERRAND_SMTP__PORT?)"},
		{"ERRAND_SMTP=x", "ERRAND_SMTP is not a setting ([smtp] is a table; set its keys, e.g. ERRAND_SMTP__FROM)"},
		{"ERRAND_QUEUES=x", "ERRAND_QUEUES is not a setting ([queues] is a table; set its keys, e.g. ERRAND_QUEUES__<NAME>)"},
		{"ERRAND_JOBS__X=1", "ERRAND_JOBS__X is not a setting (did you mean ERRAND_JOBS__X__BACKOFF?)"},
	} {
		_, err := Load("", false, []string{tc.env}, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.env, err, tc.want)
		}
	}
	env := []string{"ERRAND_TOKEN=abc", "ERRAND_DEV_API_TOKEN=x", "ERRAND_TEST_ARTIFACTS=/tmp", "ERRAND_PG_BIN=/usr/bin",
		"ERRAND_NOTIFY__REPS__ALICE__NAME=Alice", "ERRAND_LIMITS__SLACK__RATE=5/1s", "ERRAND_QUEUES__REPORTS=2"}
	c, err := Load("", false, env, nil)
	if err != nil {
		t.Fatalf("variables that are settings, or not errand's: %v", err)
	}
	if c.Notify.Reps["alice"].Name != "Alice" || c.Limits["slack"].Rate != "5/1s" || c.Queues["reports"] != 2 {
		t.Fatalf("settings not read: %+v", c)
	}
}

// A value that is not what its key takes names the variable or key, the
// value and what was expected; never strconv's words. A TOML syntax error
// names the line.
func TestBadValueNamesWhatWasExpected(t *testing.T) {
	for _, tc := range []struct {
		file string
		env  string
		want string
	}{
		{"", "ERRAND_WORKER__CONCURRENCY=many", `ERRAND_WORKER__CONCURRENCY="many" (worker.concurrency): must be a whole number`},
		{"", "ERRAND_SMTP__PORT=25.5", `ERRAND_SMTP__PORT="25.5" (smtp.port): must be a whole number`},
		{"", "ERRAND_QUEUES__EMAILS=lots", `ERRAND_QUEUES__EMAILS="lots" (queues.emails): must be a whole number`},
		{"", "ERRAND_API__ALLOW_PRIVATE_CALLBACKS=maybe", `ERRAND_API__ALLOW_PRIVATE_CALLBACKS="maybe" (api.allow_private_callbacks): must be true or false`},
		{"", "ERRAND_WORKER__SHUTDOWN_TIMEOUT=5x", `ERRAND_WORKER__SHUTDOWN_TIMEOUT="5x" (worker.shutdown_timeout): must be a duration like "30s" or "5m"`},
		{"[smtp]\nport = \"abc\"\n", "", `smtp.port = "abc": must be a whole number`},
		{"[worker]\nconcurrency = true\n", "", `worker.concurrency = true: must be a whole number`},
		{"[worker]\nshutdown_timeout = 30\n", "", `worker.shutdown_timeout = 30: must be a duration like "30s" or "5m"`},
		{"[jobs.\"user:welcome_email\"]\nbackoff = [\"10s\", \"soon\"]\n", "", `jobs.user:welcome_email.backoff = "soon": must be a list whose every item is a duration`},
		{"[smtp]\nport = 25\n\nhost = \n", "", "config.toml:4:"},
	} {
		var env []string
		if tc.env != "" {
			env = []string{tc.env}
		}
		_, err := Load(writeFile(t, tc.file), true, env, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "strconv") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q %q: got %v, want one line with %q", tc.file, tc.env, err, tc.want)
		}
	}
}
