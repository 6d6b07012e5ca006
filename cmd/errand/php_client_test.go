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

// phpClientPrelude loads clients/php the way Composer's PSR-4 autoloader
// would (the test runs without Composer).
func phpClientPrelude(t *testing.T) string {
	t.Helper()
	src, err := filepath.Abs("../../clients/php/src")
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`<?php
declare(strict_types=1);
spl_autoload_register(function (string $class): void {
    if (str_starts_with($class, 'Errand\\')) {
        require %q . '/' . substr($class, 7) . '.php';
    }
});
use Errand\Errand;
`, src)
}

// runPHP runs script with php-cli and decodes the JSON it prints.
func runPHP(t *testing.T, php, script string, env ...string) map[string]any {
	t.Helper()
	path := filepath.Join(t.TempDir(), "client.php")
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	// Every notice, warning and deprecation is shown, on stderr: the client
	// must run clean.
	cmd := exec.Command(php, "-d", "error_reporting=-1", "-d", "display_errors=stderr", path)
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("php %s: %v\n%s%s", path, err, out, stderr.String())
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("php printed %s", out)
	}
	return got
}

// The PHP client (clients/php, Composer package errand/client) against a
// real errand serve, run with php-cli: Errand::later queues a delayed job on
// the named queue; the same call with the same idempotency key answers the
// same job again and queues nothing; the key with another job is a 409;
// Errand::push runs at once and status() follows it; a 422 names the field;
// an unknown id is JobNotFound. A PHP receiver built on
// Errand::verifyCallback (run with php -S) accepts errand's real signed
// callback and refuses a forged, a tampered and a stale one.
// scripts/test.sh installs php-cli and php-curl.
func TestPHPClientAgainstErrandServe(t *testing.T) {
	t.Parallel()
	php, err := exec.LookPath("php")
	if err != nil {
		t.Fatal("php is not installed (scripts/test.sh installs php-cli): clients/php cannot be checked")
	}
	if out, _ := exec.Command(php, "-r", "echo extension_loaded('curl') ? 'yes' : 'no';").Output(); string(out) != "yes" {
		t.Fatal("php has no curl extension (scripts/test.sh installs php-curl): clients/php cannot be checked")
	}
	var composer struct {
		Name    string
		Require map[string]string
	}
	raw, err := os.ReadFile("../../clients/php/composer.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &composer); err != nil {
		t.Fatalf("clients/php/composer.json: %v", err)
	}
	if composer.Name != "errand/client" || composer.Require["php"] != ">=8.1" || len(composer.Require) != 3 ||
		composer.Require["ext-curl"] == "" || composer.Require["ext-json"] == "" {
		t.Fatalf("clients/php/composer.json: %s, requires %v: want errand/client needing PHP 8.1+, ext-curl and ext-json only", composer.Name, composer.Require)
	}

	// The callback receiver, as a shop would write it with the client.
	dir := t.TempDir()
	received := filepath.Join(dir, "received.jsonl")
	receiverScript := phpClientPrelude(t) + `
try {
    $outcome = Errand::verifyCallback(getallheaders(), file_get_contents('php://input'), getenv('ERRAND_CALLBACK_SECRET'));
} catch (\Errand\InvalidSignature $e) {
    http_response_code(401);
    echo $e->getMessage();
    exit;
}
file_put_contents(getenv('RECEIVED_FILE'), json_encode($outcome) . "\n", FILE_APPEND);
http_response_code(204);
`
	if err := os.WriteFile(filepath.Join(dir, "receiver.php"), []byte(receiverScript), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	phpServer := exec.Command(php, "-d", "error_reporting=-1", "-d", "log_errors=1", "-S", addr, filepath.Join(dir, "receiver.php"))
	phpServer.Env = append(os.Environ(), "ERRAND_CALLBACK_SECRET="+testCallbackSecret, "RECEIVED_FILE="+received)
	var phpLog syncBuffer
	phpServer.Stdout, phpServer.Stderr = &phpLog, &phpLog
	if err := phpServer.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = phpServer.Process.Kill(); _ = phpServer.Wait() })
	receiver := "http://" + addr + "/errand-callback"

	s := startStack(t, stackOptions{toml: apiTOML})
	env := []string{"ERRAND_URL=" + s.base, "ERRAND_TOKEN=" + firstToken, "RECEIVER=" + receiver}
	queuedAt := time.Now()
	got := runPHP(t, php, phpClientPrelude(t)+`
$out = [];
$payload = ['user_id' => 7, 'email' => 'ada@shop.test', 'first_name' => 'Ada'];
$out['later'] = Errand::later(5, 'user:welcome_email', $payload, 'emails', ['idempotency_key' => 'user-7-welcome']);
$out['again'] = Errand::later(5, 'user:welcome_email', $payload, 'emails', ['idempotency_key' => 'user-7-welcome']);
try {
    Errand::later(5, 'user:welcome_email', ['email' => 'eve@shop.test'] + $payload, 'emails', ['idempotency_key' => 'user-7-welcome']);
    $out['conflict'] = 'no exception';
} catch (\Errand\IdempotencyConflict $e) {
    $out['conflict'] = $e->status;
}
$out['status_later'] = Errand::status($out['later']['id']);
$out['push'] = Errand::push('ops:noop', [], null, ['callback_url' => getenv('RECEIVER'), 'callback_token' => 'shop-cb-token']);
try {
    Errand::push('user:welcome_email', ['user_id' => 8]);
    $out['invalid'] = 'no exception';
} catch (\Errand\RequestFailed $e) {
    $out['invalid'] = ['status' => $e->status, 'fields' => $e->fields];
}
try {
    Errand::status('01NOSUCHJOB');
    $out['unknown'] = 'no exception';
} catch (\Errand\JobNotFound $e) {
    $out['unknown'] = $e->status;
}
echo json_encode($out);
`, env...)

	later, _ := got["later"].(map[string]any)
	again, _ := got["again"].(map[string]any)
	if later["type"] != "user:welcome_email" || later["queue"] != "emails" || later["state"] != "scheduled" || later["replayed"] != false {
		t.Fatalf("Errand::later answered %v", later)
	}
	if again["id"] != later["id"] || again["replayed"] != true {
		t.Fatalf("the same key and job again answered %v, want job %v replayed", again, later["id"])
	}
	if got["conflict"] != float64(http.StatusConflict) {
		t.Fatalf("the key with another job: %v, want IdempotencyConflict 409", got["conflict"])
	}
	st, _ := got["status_later"].(map[string]any)
	next, err := time.Parse(time.RFC3339Nano, str(st["next_run_at"]))
	if st["state"] != "scheduled" || err != nil || next.Before(queuedAt.Add(4*time.Second)) {
		t.Fatalf("Errand::status of the delayed job: %v (next_run_at %v)", st, err)
	}
	if ids := s.jobIDs("emails"); len(ids) != 1 || ids[0] != later["id"] {
		t.Fatalf("jobs on emails: %v, want the one job %v", ids, later["id"])
	}
	if inv, _ := got["invalid"].(map[string]any); inv["status"] != float64(http.StatusUnprocessableEntity) || inv["fields"] == nil {
		t.Fatalf("an invalid payload: %v, want RequestFailed 422 naming the fields", got["invalid"])
	}
	if got["unknown"] != float64(http.StatusNotFound) {
		t.Fatalf("an unknown id: %v, want JobNotFound 404", got["unknown"])
	}
	push, _ := got["push"].(map[string]any)
	s.waitJobState(firstToken, str(push["id"]), "completed")

	// errand's own callback is verified by the PHP receiver.
	var outcome map[string]any
	s.waitFor(20*time.Second, "the PHP receiver to accept errand's callback", func() bool {
		raw, _ := os.ReadFile(received)
		return json.Unmarshal(raw, &outcome) == nil
	})
	if outcome["id"] != push["id"] || outcome["state"] != "completed" || outcome["type"] != "ops:noop" {
		t.Fatalf("the receiver decoded %v", outcome)
	}

	// Forged, tampered and stale callbacks are refused.
	body := []byte(`{"id":"` + str(push["id"]) + `","type":"ops:noop","state":"failed","attempts":3,"error":"forged"}`)
	sign := func(secret string, at time.Time, body []byte) string {
		ts := strconv.FormatInt(at.Unix(), 10)
		return fmt.Sprintf("t=%s,v1=%s", ts, callbackSign(secret, ts, body))
	}
	for name, c := range map[string]struct {
		sig  string
		body []byte
	}{
		"forged":   {sign("not-errands-callback-secret", time.Now(), body), body},
		"tampered": {sign(testCallbackSecret, time.Now(), []byte(`{"state":"completed"}`)), body},
		"stale":    {sign(testCallbackSecret, time.Now().Add(-10*time.Minute), body), body},
		"missing":  {"", body},
	} {
		req, _ := http.NewRequest("POST", receiver, strings.NewReader(string(c.body)))
		req.Header.Set("X-Errand-Signature", c.sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s callback: the PHP receiver answered %d, want 401", name, resp.StatusCode)
		}
	}
	for _, bad := range []string{"Warning", "Notice", "Deprecated", "Fatal"} {
		if strings.Contains(phpLog.String(), bad) {
			t.Errorf("the PHP receiver logged a %s:\n%s", bad, phpLog.String())
		}
	}
	if raw, _ := os.ReadFile(received); strings.Count(string(raw), "\n") != 1 {
		t.Fatalf("the receiver accepted %d callbacks, want errand's one:\n%s\nphp log:\n%s", strings.Count(string(raw), "\n"), raw, phpLog.String())
	}

	// verifyCallback takes headers in every shape frameworks hand them over.
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	sig := fmt.Sprintf("t=%s,v1=%s", ts, callbackSign(testCallbackSecret, ts, body))
	shapes := runPHP(t, php, phpClientPrelude(t)+`
$body = getenv('BODY');
$sig = getenv('SIG');
$ok = [];
foreach ([
    'getallheaders' => ['X-Errand-Signature' => $sig],
    'server' => ['HTTP_X_ERRAND_SIGNATURE' => $sig],
    'laravel' => ['x-errand-signature' => [$sig]],
    'thinkphp' => ['x-errand-signature' => $sig],
] as $shape => $headers) {
    $ok[$shape] = Errand::verifyCallback($headers, $body, getenv('SECRET'))['state'];
}
echo json_encode($ok);
`, "BODY="+string(body), "SIG="+sig, "SECRET="+testCallbackSecret)
	for _, shape := range []string{"getallheaders", "server", "laravel", "thinkphp"} {
		if shapes[shape] != "failed" {
			t.Errorf("verifyCallback with %s headers: %v", shape, shapes[shape])
		}
	}
}

// README's ThinkPHP and Laravel controllers (in "Running in production")
// are valid PHP that catches the client's own exception class: php -l
// checks them (the frameworks themselves are not installed here).
func TestREADMEPHPControllersParse(t *testing.T) {
	t.Parallel()
	php, err := exec.LookPath("php")
	if err != nil {
		t.Fatal("php is not installed (scripts/test.sh installs php-cli)")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(readme)
	start := strings.Index(section, "\n## Running in production\n")
	if start < 0 {
		t.Fatal("README has no Running in production section")
	}
	section = section[start+1:]
	section = section[:strings.Index(section, "\n## ")]
	blocks := strings.Split(section, "```php\n")[1:]
	if len(blocks) != 2 {
		t.Fatalf("%d PHP blocks in Running in production, want the ThinkPHP and the Laravel controller", len(blocks))
	}
	for i, b := range blocks {
		code := b[:strings.Index(b, "```")]
		for _, want := range []string{"use Errand\\Errand;", "use Errand\\InvalidSignature;", "Errand::later(5, 'user:welcome_email'", "Errand::verifyCallback("} {
			if !strings.Contains(code, want) {
				t.Errorf("controller %d has no %s", i+1, want)
			}
		}
		path := filepath.Join(t.TempDir(), "controller.php")
		if err := os.WriteFile(path, []byte(code), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(php, "-l", path).CombinedOutput(); err != nil {
			t.Errorf("controller %d: php -l: %v\n%s", i+1, err, out)
		}
	}
}
