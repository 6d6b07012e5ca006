package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/sandbox"
	"github.com/errandhq/errand/internal/slack/slacktest"
)

// runCLI runs errand with args and environ, as a user at a terminal does.
func runCLI(t *testing.T, environ []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = run(context.Background(), args, environ, &out, &errOut)
	return out.String(), errOut.String(), err
}

// errLine is what main prints for err: one line, or nothing for a usage
// error (the command has printed its usage).
func errLine(err error) string {
	if _, ok := err.(usageError); ok || err == nil {
		return ""
	}
	return "errand: " + err.Error()
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// --config is read wherever it stands on the command line.
func TestConfigFlagAnywhere(t *testing.T) {
	t.Parallel()
	// A file errand refuses shows it was read.
	path := writeConfig(t, "[smtp]\nhots = \"mail\"\n")
	want := "unknown key smtp.hots (the closest known key is smtp.host)"
	for _, args := range [][]string{
		{"--config", path, "queues"},
		{"--config=" + path, "queues", "--json"},
		{"-config", path, "failed", "list"},
		{"queues", "--config", path},
		{"enqueue", "ops:noop", "--config", path},
		{"failed", "retry", "01J", "--config", path},
	} {
		_, _, err := runCLI(t, nil, args...)
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), want) {
			t.Errorf("errand %s: %v, want the file's unknown key", strings.Join(args, " "), err)
		}
	}
	// --config and no command: the usage.
	if _, stderr, err := runCLI(t, nil, "--config", path); err == nil || err.Error() != "no command" || !strings.Contains(stderr, "Usage:") {
		t.Errorf("errand --config %s: %v\n%s", path, err, stderr)
	}
}

// A bad number names the flag or variable, the value and what was
// expected, in words, never strconv's; a TOML syntax error names its line.
func TestBadNumbersAndSyntaxSayWhatWasExpected(t *testing.T) {
	t.Parallel()
	_, stderr, err := runCLI(t, nil, "worker", "--concurrency", "lots", "--config", writeConfig(t, ""))
	if _, ok := err.(usageError); !ok || !strings.Contains(stderr, `invalid value "lots" for flag -concurrency: must be a whole number`) {
		t.Errorf("--concurrency lots: %v\n%s", err, stderr)
	}
	_, stderr, err = runCLI(t, nil, "sandbox", "send-order", "--order", "1001x", "--config", writeConfig(t, ""))
	if _, ok := err.(usageError); !ok || !strings.Contains(stderr, `invalid value "1001x" for flag -order: must be a whole number`) {
		t.Errorf("--order 1001x: %v\n%s", err, stderr)
	}
	for _, tc := range []struct {
		env  []string
		file string
		want string
	}{
		{[]string{"ERRAND_WORKER__CONCURRENCY=lots"}, "", `ERRAND_WORKER__CONCURRENCY="lots" (worker.concurrency): must be a whole number`},
		{[]string{"ERRAND_SMTP__PORT=smtp"}, "", `ERRAND_SMTP__PORT="smtp" (smtp.port): must be a whole number`},
		{nil, "[smtp]\nport = \"25x\"\n", `smtp.port = "25x": must be a whole number`},
		{nil, "[smtp]\nhost = \"mail\"\n\nport = \n", ".toml:4:"},
		{[]string{"ERRAND_SMTP_HOST=mail"}, "", "ERRAND_SMTP_HOST is not a setting (did you mean ERRAND_SMTP__HOST?)"},
	} {
		_, _, err := runCLI(t, tc.env, "queues", "--config", writeConfig(t, tc.file))
		line := errLine(err)
		if !strings.Contains(line, tc.want) || strings.Contains(line, "strconv") || strings.Contains(line, "\n") {
			t.Errorf("%v %q: %q, want one line with %q", tc.env, tc.file, line, tc.want)
		}
	}
}

// A command missing its argument says what is missing before the usage.
func TestMissingArgumentsAreNamed(t *testing.T) {
	t.Parallel()
	cfg := writeConfig(t, "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"failed", "retry"}, "errand: failed retry: give the ID of a failed job (errand failed list shows them), or --all\n"},
		{[]string{"failed"}, "errand: failed: give a subcommand: list, retry, forget, flush or prune\n"},
		{[]string{"sandbox", "send-tracking"}, "errand: sandbox send-tracking: --order is required (the id of an order sent with send-order)\n"},
		{[]string{"enqueue"}, "errand: enqueue: give exactly one job TYPE (e.g. ops:noop)\n"},
	} {
		_, stderr, err := runCLI(t, nil, append(tc.args, "--config", cfg)...)
		if _, ok := err.(usageError); !ok || !strings.HasPrefix(stderr, tc.want) || !strings.Contains(stderr, "Usage: errand") {
			t.Errorf("errand %s: %v\n%s\nwant first %q, then the usage", strings.Join(tc.args, " "), err, stderr, tc.want)
		}
	}
}

// A payload that fails its type's checks is one line naming every problem.
func TestEnqueueBadPayloadIsOneLine(t *testing.T) {
	t.Parallel()
	cfg := writeConfig(t, "")
	for payload, want := range map[string]string{
		`{"user_id":7}`: "errand: enqueue: invalid payload: email: must be a valid email address; first_name: must not be empty",
		`[1]`:           "errand: enqueue: invalid payload: must be a JSON object, not array",
		`{"user_id":`:   "errand: enqueue: --payload is not valid JSON",
	} {
		_, _, err := runCLI(t, nil, "enqueue", "user:welcome_email", "--payload", payload, "--config", cfg)
		if got := errLine(err); got != want {
			t.Errorf("--payload %s: %q, want %q", payload, got, want)
		}
	}
}

// `errand queues` counts what succeeded today apart from the attempts that
// failed: one message delivered and one refused is 1 and 1, not "2 done".
func TestQueuesCountSucceededAndFailedApart(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{})
	s.sandbox.AddFault(sandbox.Fault{Service: slacktest.Service, Status: 404, Count: 1})
	failed := s.enqueue("user:notify_staff", newCustomer)
	s.waitFor(20*time.Second, "the refused message in the failed list", func() bool { return s.failedJob(failed) != nil })
	s.waitDone(s.enqueue("user:notify_staff", newCustomer))
	out, err := s.cli("queues")
	if err != nil {
		t.Fatal(err, out)
	}
	lines := strings.Split(out, "\n")
	if f := strings.Fields(lines[0]); !strings.Contains(lines[0], "SUCCEEDED TODAY  FAILED ATTEMPTS TODAY") || len(f) != 13 {
		t.Fatalf("header %q", lines[0])
	}
	row := ""
	for _, l := range lines {
		if f := strings.Fields(l); len(f) > 0 && f[0] == "notifications" {
			row = strings.Join(f[7:9], " ")
		}
	}
	if row != "1 1" {
		t.Fatalf("notifications: succeeded and failed today %q, want \"1 1\":\n%s", row, out)
	}
	out, err = s.cli("queues", "--json")
	if err != nil {
		t.Fatal(err, out)
	}
	var stats []map[string]any
	if err := json.Unmarshal([]byte(out), &stats); err != nil {
		t.Fatal(err, out)
	}
	for _, q := range stats {
		if q["queue"] == "notifications" && (q["succeeded_today"] != 1.0 || q["failed_attempts_today"] != 1.0 || q["processed_today"] != nil) {
			t.Fatalf("notifications in JSON: %v", q)
		}
	}
}
