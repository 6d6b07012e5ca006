package main

// Each worker under test runs in a child process (this binary re-executed with
// the hidden "_worker" subcommand), so that its peak RSS is its own and the
// producer's work does not share its CPU time or Go runtime.
//
// Protocol on the child's stdout, one line each:
//
//	ready          the worker was started
//	done           the expected number of jobs completed
//	result {JSON}  after stdin was closed (or -max-life passed) and the worker stopped
//
// The parent closes the child's stdin to stop it. The child's stderr (the
// workers' own logs) goes to a file.

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/errandhq/errand/internal/limit"
	"github.com/errandhq/errand/internal/metrics"
	"github.com/errandhq/errand/internal/queue"
	"github.com/errandhq/errand/internal/redact"
	"github.com/errandhq/errand/internal/redisconn"
	"github.com/errandhq/errand/jobs"
	"github.com/hibiken/asynq"
)

const childCommand = "_worker"

// childResult is what a worker child reports when it stops.
type childResult struct {
	Impl     string `json:"impl"`
	Mode     string `json:"mode"`
	Count    int64  `json:"count"`    // jobs completed (probe: distinct jobs started)
	Attempts int64  `json:"attempts"` // handler runs
	StartNS  int64  `json:"start_ns"` // just before the worker was started
	DoneNS   int64  `json:"done_ns"`  // when Count reached the expected number; 0 if it never did
	// CPU time the worker used from its start to DoneNS (0 if unknown).
	CPUNS   int64   `json:"cpu_ns"`
	Starts  []int64 `json:"starts,omitempty"`
	VmHWMKB int64   `json:"vm_hwm_kb"`
	VmRSSKB int64   `json:"vm_rss_kb"`
	Err     string  `json:"err,omitempty"`
}

// recorder is the handlers' shared bookkeeping.
type recorder struct {
	mode   string
	expect int64
	out    *lineWriter

	count    atomic.Int64
	attempts atomic.Int64
	doneNS   atomic.Int64
	cpuNS    atomic.Int64 // the process's CPU time at done
	doneOnce sync.Once

	mu     sync.Mutex
	starts []int64
	tries  map[int]int
}

func (r *recorder) completed() {
	if n := r.count.Add(1); r.expect > 0 && n == r.expect {
		r.doneOnce.Do(func() {
			r.doneNS.Store(time.Now().UnixNano())
			r.cpuNS.Store(int64(cpuTime()))
			r.out.line("done")
		})
	}
}

// started records the first start of probe job n.
func (r *recorder) started(n int, at time.Time) {
	r.attempts.Add(1)
	r.mu.Lock()
	first := n >= 0 && n < len(r.starts) && r.starts[n] == 0
	if first {
		r.starts[n] = at.UnixNano()
	}
	r.mu.Unlock()
	if first {
		r.completed()
	}
}

// flaky fails the first attempts of job n, then succeeds. Attempts are
// counted here, not read from the queue library, so the count does not
// depend on how a worker passes its context.
func (r *recorder) flaky(n int) error {
	r.attempts.Add(1)
	r.mu.Lock()
	r.tries[n]++
	try := r.tries[n]
	r.mu.Unlock()
	if try <= flakyFailures {
		return fmt.Errorf("bench: planned failure %d of job %d", try, n)
	}
	r.completed()
	return nil
}

func (r *recorder) noop() {
	r.attempts.Add(1)
	r.completed()
}

// lineWriter writes whole lines to stdout from several goroutines.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) line(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintln(l.w, s)
}

// runChild is the "_worker" subcommand.
func runChild(args []string) int {
	fs := flag.NewFlagSet(childCommand, flag.ContinueOnError)
	impl := fs.String("impl", "errand", "errand | asynq")
	mode := fs.String("mode", "noop", "noop | gated (noop asking the service gate first; errand only) | probe | flaky")
	addr := fs.String("redis", "127.0.0.1:6379", "Redis address, or a cluster's comma-separated masters")
	conc := fs.Int("concurrency", 50, "jobs run at once")
	expect := fs.Int64("expect", 0, "print done after this many jobs (0: never)")
	queues := fs.String("queues", "", "errand worker.queues")
	logLevel := fs.String("log-level", "info", "errand log level")
	maxLife := fs.Duration("max-life", 10*time.Minute, "stop after this long in any case")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	out := &lineWriter{w: os.Stdout}
	rec := &recorder{mode: *mode, expect: *expect, out: out, tries: map[int]int{}}
	if *mode == "probe" {
		rec.starts = make([]int64, *expect)
	}

	ctx, cancel := context.WithTimeout(context.Background(), *maxLife)
	defer cancel()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()

	// BENCH_CPUPROFILE=dir writes each worker child's CPU profile there, as
	// <impl>-<mode>-<pid>.pprof (go tool pprof reads it).
	if dir := os.Getenv("BENCH_CPUPROFILE"); dir != "" {
		f, perr := os.Create(filepath.Join(dir, fmt.Sprintf("%s-%s-%d.pprof", *impl, *mode, os.Getpid())))
		if perr == nil && pprof.StartCPUProfile(f) == nil {
			defer func() { pprof.StopCPUProfile(); _ = f.Close() }()
		}
	}

	res := childResult{Impl: *impl, Mode: *mode}
	var err error
	switch *impl {
	case "errand":
		err = runErrandWorker(ctx, rec, &res, *addr, *conc, *queues, *logLevel, *mode == "gated")
	case "asynq":
		err = runAsynqWorker(ctx, rec, &res, *addr, *conc, *mode)
	default:
		err = fmt.Errorf("unknown -impl %q", *impl)
	}
	if err != nil {
		res.Err = err.Error()
	}
	res.Count = rec.count.Load()
	res.Attempts = rec.attempts.Load()
	res.DoneNS = rec.doneNS.Load()
	if c := rec.cpuNS.Load(); c > 0 {
		res.CPUNS = c - res.CPUNS // runErrandWorker/runAsynqWorker put the CPU time at start there
	} else {
		res.CPUNS = 0
	}
	rec.mu.Lock()
	res.Starts = rec.starts
	rec.mu.Unlock()
	res.VmHWMKB, res.VmRSSKB = procStatus("self")
	b, _ := json.Marshal(res)
	out.line("result " + string(b))
	if err != nil {
		return 1
	}
	return 0
}

// runErrandWorker runs errand's worker through its public API:
// queue.NewPolicy + queue.NewWorker + Run, with the bench's handlers
// registered.
func runErrandWorker(ctx context.Context, rec *recorder, res *childResult, addr string, conc int, queues, logLevel string, gated bool) error {
	cfg, err := errandConfig(addr, conc, queues, logLevel)
	if err != nil {
		return err
	}
	rdb := redisconn.New(cfg.Redis)
	defer rdb.Close()
	// gated: each no-op first asks the gate of a service whose [limits] are
	// never reached (limitsNeverHit), as a job's call of that service would.
	var gate *limit.Gate
	if gated {
		cfg.Limits = limitsNeverHit
		if gate, err = limit.New(rdb, cfg.Limits); err != nil {
			return err
		}
	}
	reg, err := errandRegistry(cfg, &handlers{
		noop: func(ctx context.Context, a jobs.Noop) error {
			if gated {
				if err := gate.Wait(ctx, gatedService); err != nil {
					return err
				}
			}
			err := jobs.Noop{}.Work(ctx, a)
			rec.noop()
			return err
		},
		probe: func(_ context.Context, p probeJob) error {
			rec.started(p.N, time.Now())
			return nil
		},
		flaky: func(_ context.Context, f flakyJob) error { return rec.flaky(f.N) },
	})
	if err != nil {
		return err
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	// The failure policy as `errand worker` wires it (cmd/errand/worker.go).
	policy := queue.NewPolicy(queue.PolicyConfig{
		Registry: reg, Log: log,
		Redactor: redact.New(cfg.Escalation.Redact),
		Metrics:  metrics.NewRecorder(rdb, log),
		Escalate: jobs.NewEscalator(reg, queue.NewGroups(reg, rdb)).Escalate,
		CallBack: jobs.NewCallbacks(reg, queue.NewClient(reg, rdb)).Report,
	})
	w, err := queue.NewWorker(cfg, rdb, log, queue.WorkerOptions{Policy: policy, Aggregate: jobs.MergeDigests})
	if err != nil {
		return err
	}
	res.StartNS, res.CPUNS = time.Now().UnixNano(), int64(cpuTime())
	rec.out.line("ready")
	return w.Run(ctx, nil)
}

// runAsynqWorker is a plain asynq program: one server, default configuration
// but for the concurrency (and, for the retry scenario, a zero retry delay).
func runAsynqWorker(ctx context.Context, rec *recorder, res *childResult, addr string, conc int, mode string) error {
	cfg := asynq.Config{Concurrency: conc}
	if mode == "flaky" {
		cfg.RetryDelayFunc = func(int, error, *asynq.Task) time.Duration { return 0 }
	}
	srv := asynq.NewServer(asynqConn(addr), cfg)
	mux := asynq.NewServeMux()
	mux.HandleFunc(noopType, func(context.Context, *asynq.Task) error {
		rec.noop()
		return nil
	})
	mux.HandleFunc(probeType, func(_ context.Context, t *asynq.Task) error {
		at := time.Now()
		var p probeJob
		if err := json.Unmarshal(t.Payload(), &p); err != nil {
			return fmt.Errorf("%v: %w", err, asynq.SkipRetry)
		}
		rec.started(p.N, at)
		return nil
	})
	mux.HandleFunc(flakyType, func(_ context.Context, t *asynq.Task) error {
		var f flakyJob
		if err := json.Unmarshal(t.Payload(), &f); err != nil {
			return fmt.Errorf("%v: %w", err, asynq.SkipRetry)
		}
		return rec.flaky(f.N)
	})
	res.StartNS, res.CPUNS = time.Now().UnixNano(), int64(cpuTime())
	if err := srv.Start(mux); err != nil {
		return err
	}
	rec.out.line("ready")
	<-ctx.Done()
	srv.Shutdown()
	return nil
}

// procStatus returns VmHWM and VmRSS (kB) of a process ("self" or a pid).
func procStatus(pid string) (hwm, rss int64) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmHWM":
			hwm = n
		case "VmRSS":
			rss = n
		}
	}
	return hwm, rss
}

// childOpts describes a worker child to start.
type childOpts struct {
	impl, mode  string
	concurrency int
	expect      int64
	queues      string
	logLevel    string
	maxLife     time.Duration
}

// child is a running worker child, seen from the parent.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	events chan string // "ready", "done"
	result chan childResult
	exited chan error
	log    string

	stopOnce sync.Once
	res      childResult
	err      error
}

// startChild starts a worker child and waits for it to report ready.
func (b *bench) startChild(o childOpts) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	if o.maxLife == 0 {
		o.maxLife = 10 * time.Minute
	}
	args := []string{childCommand,
		"-impl", o.impl, "-mode", o.mode, "-redis", b.on,
		"-concurrency", strconv.Itoa(o.concurrency), "-expect", strconv.FormatInt(o.expect, 10),
		"-queues", o.queues, "-log-level", o.logLevel, "-max-life", o.maxLife.String()}
	cmd := exec.Command(exe, args...)
	cmd.SysProcAttr = sysProcAttr(syscall.SIGKILL)
	b.logSeq++
	logPath := fmt.Sprintf("%s/worker-%02d-%s-%s.log", b.workDir, b.logSeq, o.impl, o.mode)
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	c := &child{cmd: cmd, stdin: stdin, events: make(chan string, 4), result: make(chan childResult, 1), exited: make(chan error, 1), log: logPath}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 64<<20)
		for sc.Scan() {
			line := sc.Text()
			if js, ok := strings.CutPrefix(line, "result "); ok {
				var r childResult
				if err := json.Unmarshal([]byte(js), &r); err != nil {
					r.Err = "bad result line: " + err.Error()
				}
				c.result <- r
				continue
			}
			select {
			case c.events <- line:
			default:
			}
		}
		c.exited <- cmd.Wait()
		logf.Close()
	}()
	if err := c.waitEvent("ready", 30*time.Second); err != nil {
		c.kill()
		return nil, err
	}
	return c, nil
}

// waitEvent waits for a line from the child.
func (c *child) waitEvent(want string, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case ev := <-c.events:
			if ev == want {
				return nil
			}
		case r := <-c.result:
			c.result <- r
			return fmt.Errorf("worker stopped before %q: %s (log: %s)", want, r.Err, c.log)
		case <-t.C:
			return fmt.Errorf("no %q from the worker within %s (log: %s)", want, timeout, c.log)
		}
	}
}

// stop closes the child's stdin, which stops its worker, and returns what it
// reported. Later calls return the same.
func (c *child) stop(timeout time.Duration) (childResult, error) {
	c.stopOnce.Do(func() { c.res, c.err = c.doStop(timeout) })
	return c.res, c.err
}

func (c *child) doStop(timeout time.Duration) (childResult, error) {
	_ = c.stdin.Close()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r := <-c.result:
		select {
		case <-c.exited:
		case <-t.C:
			c.kill()
		}
		if r.Err != "" {
			return r, fmt.Errorf("worker: %s (log: %s)", r.Err, c.log)
		}
		return r, nil
	case <-t.C:
		c.kill()
		return childResult{}, fmt.Errorf("worker did not stop within %s (log: %s)", timeout, c.log)
	}
}

func (c *child) kill() {
	if c.cmd.Process != nil {
		_ = c.cmd.Process.Kill()
	}
	select {
	case <-c.exited:
	case <-time.After(5 * time.Second):
	}
}
