package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// readmePHPReceiver returns the PHP callback receiver README shows, as a
// script: the code between its "The callback receiver checks the signature"
// comment and the end of that code block.
func readmePHPReceiver(t *testing.T) string {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const start = "// The callback receiver checks the signature"
	text := string(readme)
	i := strings.Index(text, start)
	if i < 0 {
		t.Fatalf("README has no PHP callback receiver (looked for %q)", start)
	}
	block := text[i:]
	block = block[:strings.Index(block, "```")]
	return "<?php\n" + block
}

// The PHP receiver README gives shops accepts errand's signed callbacks and
// refuses forged or stale ones: the documentation is run, not just read.
// scripts/test.sh installs php-cli.
func TestREADMEPHPReceiverVerifiesCallbacks(t *testing.T) {
	t.Parallel()
	php, err := exec.LookPath("php")
	if err != nil {
		t.Fatal("php is not installed (scripts/test.sh installs php-cli): the README's PHP receiver cannot be checked")
	}
	dir := t.TempDir()
	received := filepath.Join(dir, "received.jsonl")
	script := readmePHPReceiver(t) + `
file_put_contents(getenv('RECEIVED_FILE'), json_encode($outcome) . "\n", FILE_APPEND);
http_response_code(204);
`
	if err := os.WriteFile(filepath.Join(dir, "receiver.php"), []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cmd := exec.Command(php, "-S", addr, filepath.Join(dir, "receiver.php"))
	cmd.Env = append(os.Environ(), "ERRAND_CALLBACK_SECRET="+testCallbackSecret, "RECEIVED_FILE="+received)
	var phpLog syncBuffer
	cmd.Stdout, cmd.Stderr = &phpLog, &phpLog
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	receiver := "http://" + addr + "/errand-callback"

	s := startStack(t, stackOptions{toml: apiTOML})
	s.waitFor(10*time.Second, "php -S to listen", func() bool {
		resp, err := http.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})

	// A forged callback (keyed by something other than api.callback_secret)
	// and a stale one (a replay from an hour ago) are refused.
	body := []byte(`{"id":"01FORGED","type":"ops:noop","state":"completed","attempts":1}`)
	sign := func(secret string, at time.Time) string {
		ts := strconv.FormatInt(at.Unix(), 10)
		return fmt.Sprintf("t=%s,v1=%s", ts, callbackSign(secret, ts, body))
	}
	for name, sig := range map[string]string{
		"forged":  sign("cb-token-the-attacker-knows", time.Now()),
		"stale":   sign(testCallbackSecret, time.Now().Add(-time.Hour)),
		"missing": "",
	} {
		req, _ := http.NewRequest("POST", receiver, strings.NewReader(string(body)))
		req.Header.Set("X-Errand-Signature", sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s signature: the README receiver answered %d, want 401", name, resp.StatusCode)
		}
	}

	// errand's own callback is accepted.
	code, acc, _ := s.api("POST", "/api/jobs", firstToken, `{"type":"ops:noop","payload":{},"callback_url":"`+receiver+`","callback_token":"cb-token"}`)
	if code != http.StatusAccepted {
		t.Fatalf("enqueue: %d %v", code, acc)
	}
	var got map[string]any
	s.waitFor(20*time.Second, "the README receiver to accept the callback", func() bool {
		raw, _ := os.ReadFile(received)
		for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
			if json.Unmarshal([]byte(line), &got) == nil && got["id"] == acc["id"] {
				return true
			}
		}
		return false
	})
	if got["state"] != "completed" || got["type"] != "ops:noop" {
		t.Fatalf("the receiver decoded %v", got)
	}
	raw, _ := os.ReadFile(received)
	if n := strings.Count(strings.TrimSpace(string(raw)), "\n") + 1; n != 1 {
		t.Fatalf("the receiver accepted %d callbacks, want errand's one: %s\nphp log:\n%s", n, raw, phpLog.String())
	}
}
