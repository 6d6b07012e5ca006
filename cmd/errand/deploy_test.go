package main

// The files of deploy/ are run, not just read: supervisord from the Debian
// package runs deploy/supervisor/errand.conf against a real Redis,
// systemd-analyze verifies the systemd units, and the compose file (which no
// test can run: this machine cannot pull images) is checked against the
// settings and the image errand really has.

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/rdb"
	"github.com/knadh/koanf/parsers/toml/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
	"go.yaml.in/yaml/v3"
)

// deployFile is a file of deploy/, as shipped.
func deployFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../../deploy", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// shippedShutdownTimeout is worker.shutdown_timeout as config.toml ships it.
func shippedShutdownTimeout(t *testing.T) time.Duration {
	t.Helper()
	cfg, err := config.Load("../../config.toml", true, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Worker.ShutdownTimeout
}

// rewrite replaces each of the shipped paths in text (each must be there,
// or the rewrite would test another file than the one shipped).
func rewrite(t *testing.T, text string, pairs ...string) string {
	t.Helper()
	for i := 0; i < len(pairs); i += 2 {
		if !strings.Contains(text, pairs[i]) {
			t.Fatalf("the shipped file no longer names %s", pairs[i])
		}
		text = strings.ReplaceAll(text, pairs[i], pairs[i+1])
	}
	return text
}

// ---- supervisord ----

// supervisor is supervisord from the Debian package running the shipped
// deploy/supervisor/errand.conf, its paths pointed at this test's binary,
// config and directories.
type supervisor struct {
	t    *testing.T
	conf string // supervisord.conf
	log  string // supervisord's own log
}

func startSupervisord(t *testing.T, s *stack) *supervisor {
	t.Helper()
	supervisord, err := exec.LookPath("supervisord")
	if err != nil {
		t.Fatal("supervisord is not installed (scripts/test.sh installs the supervisor package): deploy/supervisor cannot be checked")
	}
	bin := errandBinary(t)
	// A short directory: the control socket's path has a length limit.
	dir, err := os.MkdirTemp("", "sv")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	logs := filepath.Join(dir, "log")
	if err := os.Mkdir(logs, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := rewrite(t, deployFile(t, "supervisor/errand.conf"),
		"/usr/local/bin/errand", bin,
		"/etc/errand/config.toml", s.config,
		"/var/lib/errand", s.dir,
		"/var/log/errand", logs)
	// The test runs as whoever runs it, not as a system user errand.
	conf = regexp.MustCompile(`(?m)^user=errand\n`).ReplaceAllString(conf, "")
	for _, line := range strings.Split(conf, "\n") {
		if !strings.HasPrefix(line, ";") && (strings.Contains(line, "/var/") || strings.Contains(line, "/etc/")) {
			t.Fatalf("the shipped file names a path the test does not point elsewhere: %s", line)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "errand.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	sv := &supervisor{t: t, conf: filepath.Join(dir, "supervisord.conf"), log: filepath.Join(dir, "supervisord.log")}
	main := fmt.Sprintf(`[unix_http_server]
file=%[1]s/supervisor.sock
[supervisord]
nodaemon=true
logfile=%[1]s/supervisord.log
pidfile=%[1]s/supervisord.pid
childlogdir=%[1]s/log
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[supervisorctl]
serverurl=unix://%[1]s/supervisor.sock
[include]
files=%[1]s/errand.conf
`, dir)
	if err := os.WriteFile(sv.conf, []byte(main), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(supervisord, "-c", sv.conf)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		// supervisord stops its programs as the config says (SIGTERM, then
		// stopwaitsecs) before it exits.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			raw, _ := os.ReadFile(sv.log)
			t.Logf("supervisord log:\n%s%s", raw, out.String())
			for _, name := range []string{"errand-serve.log", "errand-worker_00.log", "errand-worker_01.log"} {
				raw, _ := os.ReadFile(filepath.Join(logs, name))
				t.Logf("%s:\n%s", name, raw)
			}
		}
	})
	return sv
}

// ctl runs supervisorctl against this supervisord.
func (sv *supervisor) ctl(args ...string) (string, error) {
	out, err := exec.Command("supervisorctl", append([]string{"-c", sv.conf}, args...)...).CombinedOutput()
	return string(out), err
}

// statusLine matches a line of `supervisorctl status`.
var statusLine = regexp.MustCompile(`^(\S+)\s+(\S+)\s+(?:pid (\d+),)?`)

// running returns the pid of each of the programs supervisord reports
// RUNNING, by name (errand-serve, errand-worker:errand-worker_00, …).
func (sv *supervisor) running() map[string]int {
	out, _ := sv.ctl("status") // exits non-zero while a program is not running
	pids := map[string]int{}
	for _, line := range strings.Split(out, "\n") {
		m := statusLine.FindStringSubmatch(line)
		if m != nil && m[2] == "RUNNING" {
			pids[m[1]], _ = strconv.Atoi(m[3])
		}
	}
	return pids
}

// waitRunning waits until supervisord reports serve and both workers
// RUNNING (up past startsecs), and returns their pids.
func (sv *supervisor) waitRunning(s *stack) map[string]int {
	sv.t.Helper()
	var pids map[string]int
	s.waitFor(60*time.Second, "supervisord to report serve and two workers RUNNING", func() bool {
		pids = sv.running()
		return len(pids) == 3
	})
	return pids
}

// The shipped supervisord config, run by supervisord from the Debian
// package: serve and a group of two workers come up; a worker killed with
// SIGKILL mid-job is started again and the job completes (its attempt
// counted); `supervisorctl stop` of the workers with jobs in flight waits for
// their graceful exit, and once started again they deliver every job exactly
// once.
func TestSupervisordRestartsAKilledWorkerAndStopLosesNothing(t *testing.T) {
	t.Parallel()
	conf := deployFile(t, "supervisor/errand.conf")
	for _, want := range []string{"[program:errand-serve]", "[program:errand-worker]", "numprocs=2", "stopsignal=TERM", "autorestart=true"} {
		if !strings.Contains(conf, want) {
			t.Errorf("deploy/supervisor/errand.conf has no %s", want)
		}
	}
	wait := regexp.MustCompile(`(?s)\[program:errand-worker\].*?\nstopwaitsecs=(\d+)`).FindStringSubmatch(conf)
	if wait == nil {
		t.Fatal("the worker program sets no stopwaitsecs")
	}
	if secs, _ := strconv.Atoi(wait[1]); time.Duration(secs)*time.Second <= shippedShutdownTimeout(t) {
		t.Fatalf("the workers' stopwaitsecs=%s is not longer than worker.shutdown_timeout (%s): supervisord would SIGKILL jobs still finishing",
			wait[1], shippedShutdownTimeout(t))
	}

	s := startStack(t, stackOptions{configOnly: true, toml: apiTOML + welcomeAtOnce + `
[worker]
concurrency = 2
`})
	sv := startSupervisord(t, s)
	pids := sv.waitRunning(s)
	s.waitFor(30*time.Second, "errand serve under supervisord to be ready", func() bool {
		code, _ := s.get("/readyz")
		return code == http.StatusOK
	})

	// SIGKILL the worker running a job: supervisord starts it again, the new
	// one takes the job back at start, and the job completes.
	s.smtp.SetLatency(2 * time.Second)
	code, acc, _ := s.api("POST", "/api/jobs", firstToken, `{"type":"user:welcome_email","payload":{"user_id":1,"email":"killed@shop.test","first_name":"K"}}`)
	if code != http.StatusAccepted {
		t.Fatalf("enqueue through serve under supervisord: %d %v", code, acc)
	}
	id := str(acc["id"])
	s.waitFor(30*time.Second, "a worker to start the job", func() bool { return s.smtp.Attempts() >= 1 })
	// The worker that holds the job is the one its lease names.
	owner, err := s.redis.Client().HGet(context.Background(), rdb.OwnersKey(str(acc["queue"])), id).Result()
	if err != nil {
		t.Fatalf("the job's owner: %v", err)
	}
	pid, _ := strconv.Atoi(strings.Split(owner, "/")[1])
	var victim string
	for name, p := range pids {
		if p == pid && strings.HasPrefix(name, "errand-worker:") {
			victim = name
		}
	}
	if victim == "" {
		t.Fatalf("the job's owner %s is none of supervisord's workers %v", owner, pids)
	}
	s.smtp.SetLatency(0)
	killedAt := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	s.waitFor(60*time.Second, "supervisord to start "+victim+" again", func() bool {
		p := sv.running()[victim]
		return p != 0 && p != pid
	})
	st := s.waitJobStateWithin(60*time.Second, firstToken, id, "completed")
	if st["attempts"] != float64(2) {
		t.Errorf("the killed job completed after %v attempts, want 2 (the killed one counts)", st["attempts"])
	}
	if got := len(s.mailTo("killed@shop.test")); got != 1 {
		t.Fatalf("%d welcome emails to killed@shop.test, want 1", got)
	}
	t.Logf("SIGKILL: %s (pid %d) restarted by supervisord as pid %d; job %s completed %s after the kill",
		victim, pid, sv.running()[victim], id, time.Since(killedAt).Round(100*time.Millisecond))

	// `supervisorctl stop` with jobs in flight: the workers exit gracefully
	// (exit status 0, not supervisord's SIGKILL), and nothing is lost.
	// Two workers of concurrency 2 send about 13 emails a second: 100 take
	// over 7 s, so the stop below (supervisorctl can take seconds to start on
	// a loaded machine) still comes while most are queued.
	s.smtp.SetLatency(300 * time.Millisecond)
	const n = 100
	for i := range n {
		s.enqueue("user:welcome_email", fmt.Sprintf(`{"user_id":%d,"email":"s%d@shop.test","first_name":"S"}`, 100+i, i))
	}
	s.waitFor(30*time.Second, "a few emails", func() bool { return len(s.smtp.Messages()) >= 1+4 })
	stopAt := time.Now()
	out, err := sv.ctl("stop", "errand-worker:*")
	stopTook := time.Since(stopAt)
	if err != nil {
		t.Fatalf("supervisorctl stop: %v: %s", err, out)
	}
	delivered := len(s.smtp.Messages()) - 1
	if delivered >= n {
		t.Fatalf("all %d jobs were done before the stop; the test proves nothing", n)
	}
	raw, _ := os.ReadFile(sv.log)
	for _, w := range []string{"errand-worker_00", "errand-worker_01"} {
		if !regexp.MustCompile(`stopped: ` + w + ` \(exit status 0\)`).Match(raw) {
			t.Errorf("%s did not exit by itself with status 0 on supervisorctl stop:\n%s", w, raw)
		}
	}
	if out, err := sv.ctl("start", "errand-worker:*"); err != nil {
		t.Fatalf("supervisorctl start: %v: %s", err, out)
	}
	s.waitFor(60*time.Second, "every email", func() bool { return len(s.smtp.Messages()) >= 1+n })
	time.Sleep(time.Second)
	seen := map[string]int{}
	for _, m := range s.smtp.Messages() {
		seen[m.To[0]]++
	}
	for to, c := range seen {
		if c > 1 {
			t.Errorf("%s got %d emails", to, c)
		}
	}
	if len(seen) != 1+n {
		t.Fatalf("%d of %d emails delivered: jobs were lost", len(seen)-1, n)
	}
	if f := s.failed(); len(f) != 0 {
		t.Fatalf("failed list: %v", f)
	}
	t.Logf("supervisorctl stop: took %s, %d of %d emails delivered before it; all %d after start, none twice",
		stopTook.Round(100*time.Millisecond), delivered, n, n)
}

// waitJobStateWithin is waitJobState with a longer bound, for jobs that wait
// on a process manager.
func (s *stack) waitJobStateWithin(timeout time.Duration, token, id, state string) map[string]any {
	s.t.Helper()
	var st map[string]any
	s.waitFor(timeout, "job "+id+" to be "+state, func() bool {
		var code int
		code, st = s.jobStatus(token, id)
		return code == http.StatusOK && st["state"] == state
	})
	return st
}

// ---- systemd ----

// unitKeys returns each Key=value of a unit file's [Service] section; a key
// given several times keeps its values in order.
func unitKeys(text string) map[string][]string {
	keys := map[string][]string{}
	section := ""
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			section = line
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok && section == "[Service]" && !strings.HasPrefix(line, "#") {
			keys[k] = append(keys[k], v)
		}
	}
	return keys
}

// The systemd units pass `systemd-analyze verify` (no warning either) and
// its offline security audit, and carry the hardening and stop settings an
// operator relies on: their own user, a read-only system but for the SQLite
// file's directory, SIGTERM with time to finish jobs, restarted always.
func TestSystemdUnitsVerify(t *testing.T) {
	t.Parallel()
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal("systemd-analyze is not installed (scripts/test.sh installs systemd): deploy/systemd cannot be checked")
	}
	bin := errandBinary(t)
	dir := t.TempDir()
	units := map[string]string{
		"errand-serve.service":   "errand-serve.service",
		"errand-worker@.service": `errand-worker@emails\x2ccritical.service`, // --queues emails,critical
	}
	var paths []string
	for shipped, as := range units {
		text := deployFile(t, "systemd/"+shipped)
		keys := unitKeys(text)
		for key, want := range map[string]string{
			"DynamicUser": "yes", "ProtectSystem": "strict", "NoNewPrivileges": "yes",
			"KillSignal": "SIGTERM", "Restart": "always", "ReadWritePaths": "/var/lib/errand",
			"WorkingDirectory": "/var/lib/errand", "StateDirectory": "errand",
		} {
			if got := strings.Join(keys[key], " "); got != want {
				t.Errorf("%s: %s=%q, want %q", shipped, key, got, want)
			}
		}
		exec := strings.Join(keys["ExecStart"], "")
		if !strings.HasPrefix(exec, "/usr/local/bin/errand ") || !strings.Contains(exec, "--config /etc/errand/config.toml") {
			t.Errorf("%s: ExecStart=%s", shipped, exec)
		}
		if shipped == "errand-worker@.service" {
			if !strings.HasSuffix(exec, " --queues %I") {
				t.Errorf("%s: ExecStart=%s does not take its queues from the instance name (%%I)", shipped, exec)
			}
			stop, err := time.ParseDuration(strings.Join(keys["TimeoutStopSec"], "") + "s")
			if err != nil || stop <= shippedShutdownTimeout(t) {
				t.Errorf("%s: TimeoutStopSec=%v is not longer than worker.shutdown_timeout (%s)", shipped, keys["TimeoutStopSec"], shippedShutdownTimeout(t))
			}
		}
		// verify checks that ExecStart's program exists: the one just built.
		path := filepath.Join(dir, as)
		if err := os.WriteFile(path, []byte(rewrite(t, text, "/usr/local/bin/errand", bin)), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, path)
	}
	out, err := exec.Command(analyze, append([]string{"verify"}, paths...)...).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	for _, path := range paths {
		// --threshold fails the audit above an exposure of 2.0 (of 10):
		// "OK" starts below 4.9.
		out, err := exec.Command(analyze, "security", "--offline=true", "--threshold=20", path).CombinedOutput()
		if err != nil {
			t.Errorf("systemd-analyze security %s: %v\n%s", filepath.Base(path), err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		t.Logf("%s", lines[len(lines)-1])
	}
}

// ---- the healthcheck a container runs ----

// `errand healthcheck` (the compose file's healthcheck of serve, whose image
// has no curl) exits 0 while serve is ready, and fails naming what is down
// once Redis stops.
func TestHealthcheckAsksServesReadyz(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{noWorker: true})
	check := func() (string, error) {
		var out, errOut bytes.Buffer
		err := run(context.Background(), []string{"healthcheck", "--config", s.config}, nil, &out, &errOut)
		return out.String() + errOut.String(), err
	}
	if out, err := check(); err != nil || strings.TrimSpace(out) != "ready" {
		t.Fatalf("healthcheck of a ready serve: %v %q", err, out)
	}
	s.redis.Stop()
	out, err := check()
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), `"redis":"unreachable"`) {
		t.Fatalf("healthcheck with Redis down: %v %q", err, out)
	}
	if err := run(context.Background(), []string{"healthcheck", "--url", "http://" + freeAddr(t) + "/readyz"}, nil, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
		t.Fatal("healthcheck of nothing listening succeeded")
	}
}

// ---- compose ----

// configKeys are the keys config.toml documents, as section.key.
func configKeys(t *testing.T) map[string]bool {
	t.Helper()
	k := koanf.New(".")
	if err := k.Load(file.Provider("../../config.toml"), toml.Parser()); err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	for _, key := range k.Keys() {
		keys[key] = true
	}
	return keys
}

// composeEnv interpolates compose's ${VAR:?message} and ${VAR:-default} in s
// the way `docker compose` does, with vars as the shell's environment.
func composeEnv(t *testing.T, s string, vars map[string]string) string {
	t.Helper()
	return regexp.MustCompile(`\$\{([A-Z_][A-Z0-9_]*)(?::([?-])([^}]*))?\}`).ReplaceAllStringFunc(s, func(m string) string {
		p := regexp.MustCompile(`\$\{([A-Z_][A-Z0-9_]*)(?::([?-])([^}]*))?\}`).FindStringSubmatch(m)
		if v, ok := vars[p[1]]; ok && v != "" {
			return v
		}
		if p[2] == "-" {
			return p[3]
		}
		t.Fatalf("compose would refuse to start: %s is not set (%s)", p[1], p[3])
		return ""
	})
}

// envFile reads KEY=value lines.
func envFile(text string) map[string]string {
	vars := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			vars[k] = v
		}
	}
	return vars
}

// The compose file, checked statically: this machine cannot pull images nor
// run Docker, so `docker compose up` is not run here. It parses as YAML; it
// has Redis with AOF on, PostgreSQL, mailpit, serve with a healthcheck on
// /readyz and two workers; every ERRAND_ variable it and errand.env.example
// set names a key config.toml documents, and errand loads the lot; the image
// it builds (the Dockerfile) has the binary, config and port it names; the
// workers get longer than worker.shutdown_timeout to stop.
func TestComposeFileMatchesErrand(t *testing.T) {
	t.Parallel()
	var compose struct {
		Services map[string]struct {
			Image       string
			Build       struct{ Context string }
			Command     []string
			Environment map[string]string
			EnvFile     []struct{ Path string } `yaml:"env_file"`
			Ports       []string
			Healthcheck struct{ Test []string }
			DependsOn   map[string]struct{ Condition string } `yaml:"depends_on"`
			Deploy      struct{ Replicas int }
			StopGrace   string `yaml:"stop_grace_period"`
		}
	}
	text := deployFile(t, "compose.yaml")
	if err := yaml.Unmarshal([]byte(text), &compose); err != nil {
		t.Fatalf("deploy/compose.yaml: %v", err)
	}
	svc := compose.Services
	for _, name := range []string{"redis", "postgres", "mailpit", "serve", "worker"} {
		if _, ok := svc[name]; !ok {
			t.Fatalf("deploy/compose.yaml has no %s service", name)
		}
	}
	redisCmd := strings.Join(svc["redis"].Command, " ")
	for _, want := range []string{"--appendonly yes", "--maxmemory-policy noeviction"} {
		if !strings.Contains(redisCmd, want) {
			t.Errorf("redis runs %q: no %s", redisCmd, want)
		}
	}
	if n := svc["worker"].Deploy.Replicas; n != 2 {
		t.Errorf("%d workers, want 2", n)
	}
	if grace, err := time.ParseDuration(svc["worker"].StopGrace); err != nil || grace <= shippedShutdownTimeout(t) {
		t.Errorf("the workers' stop_grace_period %q is not longer than worker.shutdown_timeout (%s)", svc["worker"].StopGrace, shippedShutdownTimeout(t))
	}
	for name, dep := range map[string]string{"redis": "service_healthy", "postgres": "service_healthy", "serve": "service_healthy"} {
		if got := svc["worker"].DependsOn[name].Condition; got != dep {
			t.Errorf("the workers wait for %s to be %q, want %q", name, got, dep)
		}
	}

	// The image the file builds is the Dockerfile's: its binary, its config
	// and its port.
	dockerfile, err := os.ReadFile(filepath.Join("../../deploy", svc["serve"].Build.Context, "Dockerfile"))
	if err != nil {
		t.Fatalf("serve's build context holds no Dockerfile: %v", err)
	}
	for _, want := range []string{`ENTRYPOINT ["/usr/local/bin/errand"]`, "COPY config.toml /etc/errand/config.toml", "EXPOSE 8080"} {
		if !strings.Contains(string(dockerfile), want) {
			t.Errorf("the Dockerfile has no %s, which deploy/compose.yaml relies on", want)
		}
	}
	// The secrets the compose file reads stay out of git and of the image's
	// build context (the Dockerfile copies the whole context).
	ignored, _ := os.ReadFile(filepath.Join("../../deploy", svc["serve"].Build.Context, ".dockerignore"))
	gitignored, _ := os.ReadFile("../../deploy/.gitignore")
	for _, f := range []string{"errand.env", ".env"} {
		if !strings.Contains(string(ignored), "\ndeploy/"+f+"\n") {
			t.Errorf(".dockerignore does not keep deploy/%s out of the build context", f)
		}
		if !strings.Contains(string(gitignored), "\n"+f+"\n") {
			t.Errorf("deploy/.gitignore does not keep %s out of git", f)
		}
	}
	health := svc["serve"].Healthcheck.Test
	if strings.Join(health, " ") != "CMD /usr/local/bin/errand healthcheck --config /etc/errand/config.toml" {
		t.Errorf("serve's healthcheck is %q, want errand's own check of /readyz (the image has no shell or curl)", health)
	}
	for _, name := range []string{"serve", "worker"} {
		cmd := svc[name].Command
		if len(cmd) < 3 || cmd[0] != name || cmd[1] != "--config" || cmd[2] != "/etc/errand/config.toml" {
			t.Errorf("%s runs %q", name, cmd)
		}
		if svc[name].Build.Context != ".." || len(svc[name].EnvFile) != 1 || svc[name].EnvFile[0].Path != "errand.env" {
			t.Errorf("%s: build %+v, env_file %+v", name, svc[name].Build, svc[name].EnvFile)
		}
	}
	if ports := svc["serve"].Ports; len(ports) != 1 || !strings.HasSuffix(ports[0], ":8080") {
		t.Errorf("serve publishes %q, want the image's 8080", ports)
	}
	if got := config.Default().HTTP.Addr; got != ":8080" {
		t.Errorf("http.addr defaults to %q, not the :8080 the compose file publishes", got)
	}

	// Every ERRAND_ variable names a key config.toml documents (or an entry
	// of a table of its own, [notify.reps.<id>]), and errand loads them.
	keys := configKeys(t)
	example := envFile(deployFile(t, "errand.env.example"))
	shell := map[string]string{"POSTGRES_PASSWORD": "pg-password-0123"}
	environ := []string{}
	for name, env := range map[string]map[string]string{"compose.yaml serve": svc["serve"].Environment, "compose.yaml worker": svc["worker"].Environment, "errand.env.example": example} {
		for k, v := range env {
			if !strings.HasPrefix(k, config.EnvPrefix) {
				t.Errorf("%s sets %s, which errand does not read", name, k)
				continue
			}
			key := strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(k, config.EnvPrefix)), "__", ".")
			if !keys[key] && !strings.HasPrefix(key, "notify.reps.") {
				t.Errorf("%s sets %s: config.toml has no key %s", name, k, key)
			}
			environ = append(environ, k+"="+composeEnv(t, v, shell))
		}
	}
	cfg, err := config.Load("../../config.toml", true, environ, nil)
	if err != nil {
		t.Fatalf("errand refuses the compose file's settings: %v", err)
	}
	if cfg.Redis.Addr != "redis:6379" || cfg.SMTP.Host != "mailpit" || cfg.SMTP.Port != 1025 ||
		!strings.HasPrefix(cfg.Database.URL, "postgres://errand:pg-password-0123@postgres:5432/errand") {
		t.Errorf("errand would reach redis %s, smtp %s:%d, database %s", cfg.Redis.Addr, cfg.SMTP.Host, cfg.SMTP.Port, cfg.Database.URL)
	}
	if pw := composeEnv(t, svc["postgres"].Environment["POSTGRES_PASSWORD"], shell); pw != "pg-password-0123" {
		t.Errorf("PostgreSQL's password %q is not the one in errand's database.url", pw)
	}
	// mailpit listens for SMTP on 1025, errand's smtp.port above.
	if !strings.HasPrefix(svc["mailpit"].Image, "axllent/mailpit:") || !strings.HasPrefix(svc["postgres"].Image, "postgres:") || !strings.HasPrefix(svc["redis"].Image, "redis:") {
		t.Errorf("images: %s %s %s", svc["mailpit"].Image, svc["postgres"].Image, svc["redis"].Image)
	}
}
