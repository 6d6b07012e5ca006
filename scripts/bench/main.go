// Command bench measures errand side by side with a plain asynq program on
// the same Redis: queue drain, enqueue, latency and idle cost, delayed-job
// accuracy, the retry path, memory, and the HTTP API. scripts/bench.sh starts
// a private redis-server, builds bin/errand and this program, and runs it.
//
//	go run ./scripts/bench -redis 127.0.0.1:6390 -errand-bin bin/errand
//
// Every scenario starts from FLUSHALL with no other Redis client connected.
// Workers under test run in child processes (this binary, hidden "_worker"
// subcommand) so that each one's peak RSS and CPU are its own. errand's worker
// is queue.NewWorker + Run and its producer queue.Client, with errand's
// default configuration; asynq's is asynq.NewServer/asynq.Client with their
// defaults but for Concurrency. The web scenarios run bin/errand serve (and
// worker) as a user runs them, against local fakes of the third-party
// services. The output is a table and, last, one line of JSON.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/errandhq/errand/internal/queue"
	"github.com/errandhq/errand/internal/rdb"
	"github.com/errandhq/errand/internal/redisconn"
	"github.com/errandhq/errand/internal/store/pgtest"
	"github.com/errandhq/errand/jobs"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"golang.org/x/crypto/bcrypt"
)

// quietRedis keeps go-redis's pool chatter out of the output.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

type bench struct {
	redisAddr      string
	cluster        string // a Redis Cluster's masters, comma-separated ("" = none)
	on             string // the Redis target clients connect to now: redisAddr or cluster
	errandBin      string
	workDir        string
	concurrency    int
	producers      int
	errandQueues   string
	errandLogLevel string
	label          string

	drainJobs, enqueueJobs, latencyJobs, delayedJobs, retryJobs, memoryJobs int
	latencyRate, rounds                                                     int
	idle, settle, delayedWindow                                             time.Duration
	payloadBytes                                                            int
	webWarmup, webDuration, slowLatency                                     time.Duration
	jobsConc, usersConc                                                     int
	usersWorker                                                             bool
	drainTimeout                                                            time.Duration

	database string         // sqlite | postgres
	pgSync   string         // PostgreSQL's synchronous_commit
	pg       *pgtest.Server // with -database postgres: the bench's own PostgreSQL

	ctl    *redis.Client              // one connection: INFO, FLUSHALL, polling
	ctls   map[string][]*redis.Client // per target, one such client per server
	logSeq int
	svc    *services

	mu      sync.Mutex
	results map[string]float64
	errs    []string
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == childCommand {
		os.Exit(runChild(os.Args[2:]))
	}
	redis.SetLogger(quietRedis{})
	b := &bench{results: map[string]float64{}, errs: []string{}}
	flag.StringVar(&b.redisAddr, "redis", "", "address of the Redis server to use (it is FLUSHALLed; required)")
	flag.StringVar(&b.cluster, "cluster", "", "comma-separated masters of a Redis Cluster (FLUSHALLed): the drain scenario runs on it too, beside -redis; no other scenario runs")
	flag.StringVar(&b.errandBin, "errand-bin", "bin/errand", "the errand binary, for the web and binary-worker scenarios")
	flag.StringVar(&b.workDir, "workdir", "", "directory for logs, configs and databases (default: a new temporary directory)")
	flag.IntVar(&b.concurrency, "concurrency", 50, "worker concurrency, errand and asynq")
	flag.IntVar(&b.producers, "producers", 8, "concurrent producers when enqueueing")
	flag.StringVar(&b.errandQueues, "errand-queues", "", `errand worker.queues ("" = errand's default: every configured queue with its weight)`)
	flag.StringVar(&b.errandLogLevel, "errand-log-level", "info", "errand's log level (info is errand's default)")
	flag.IntVar(&b.rounds, "rounds", 5, "drain and enqueue: rounds, each implementation in turn going first; the median is reported")
	flag.IntVar(&b.drainJobs, "drain-jobs", 50000, "drain: queued no-op jobs")
	flag.DurationVar(&b.drainTimeout, "drain-timeout", 3*time.Minute, "drain and retry: give up after this long")
	flag.IntVar(&b.enqueueJobs, "enqueue-jobs", 40000, "enqueue: jobs pushed by the producers")
	flag.IntVar(&b.latencyJobs, "latency-jobs", 2000, "latency: immediate jobs")
	flag.IntVar(&b.latencyRate, "latency-rate", 200, "latency: jobs per second")
	flag.DurationVar(&b.idle, "idle", 10*time.Second, "idle worker: quiet period over which Redis commands are counted")
	flag.DurationVar(&b.settle, "settle", 3*time.Second, "wait after a worker starts or drains before counting its idle commands")
	flag.IntVar(&b.delayedJobs, "delayed-jobs", 1000, "delayed: jobs")
	flag.DurationVar(&b.delayedWindow, "delayed-window", 10*time.Second, "delayed: jobs are due at random instants within this")
	flag.IntVar(&b.retryJobs, "retry-jobs", 5000, "retry path: jobs failing twice, then succeeding")
	flag.IntVar(&b.memoryJobs, "memory-jobs", 10000, "memory: delayed jobs kept in Redis")
	flag.IntVar(&b.payloadBytes, "payload-bytes", 200, "memory: payload size")
	flag.DurationVar(&b.webWarmup, "web-warmup", time.Second, "web: warm-up before each measured run (not recorded)")
	flag.DurationVar(&b.webDuration, "web-duration", 30*time.Second, "web: measured duration of each load run")
	flag.IntVar(&b.jobsConc, "jobs-concurrency", 16, "web: concurrent clients for POST /api/jobs")
	flag.IntVar(&b.usersConc, "users-concurrency", 4, "web: concurrent clients for POST /api/users and for bcrypt alone")
	flag.DurationVar(&b.slowLatency, "slow-latency", 2*time.Second, "web: how late the slow third-party services answer")
	flag.BoolVar(&b.usersWorker, "users-worker", true, "web: run bin/errand worker during POST /api/users, so its jobs really call the (slow) services")
	flag.StringVar(&b.label, "label", "", "what is measured, e.g. the commit (printed and kept in the JSON)")
	flag.StringVar(&b.database, "database", "sqlite", "the errand processes' database: sqlite (a file each) or postgres (a PostgreSQL server the bench starts, a fresh database each)")
	flag.StringVar(&b.pgSync, "pg-synchronous-commit", "on", "with -database postgres: the server's synchronous_commit (on: each commit waits for its flush to disk; off: like SQLite's default synchronous=NORMAL, a power loss may lose the last moment's commits)")
	only := flag.String("scenarios", "drain,limits,enqueue,latency,delayed,retry,memory,binary,web", "comma-separated scenarios to run")
	flag.Parse()
	if b.redisAddr == "" {
		fmt.Fprintln(os.Stderr, "bench: -redis is required")
		flag.Usage()
		os.Exit(2)
	}
	for _, a := range append([]string{b.redisAddr}, clusterAddrs(b.cluster)...) {
		if a != "" && !strings.HasPrefix(a, "127.0.0.1:") && !strings.HasPrefix(a, "localhost:") {
			fmt.Fprintln(os.Stderr, "bench: -redis and -cluster must be on 127.0.0.1")
			os.Exit(2)
		}
	}
	if b.cluster != "" && (*only != "drain" || !isCluster(b.cluster)) {
		fmt.Fprintln(os.Stderr, "bench: -cluster needs at least two masters and runs only -scenarios drain")
		os.Exit(2)
	}
	// BENCH_CPUPROFILE=dir: the producer's CPU profile too (bench-<pid>.pprof).
	if dir := os.Getenv("BENCH_CPUPROFILE"); dir != "" {
		if f, err := os.Create(filepath.Join(dir, fmt.Sprintf("bench-%d.pprof", os.Getpid()))); err == nil && pprof.StartCPUProfile(f) == nil {
			defer func() { pprof.StopCPUProfile(); _ = f.Close() }()
		}
	}
	if abs, err := filepath.Abs(b.errandBin); err == nil {
		b.errandBin = abs // errand processes run in their own directories
	}
	if b.workDir == "" {
		d, err := os.MkdirTemp("", "errand-bench-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		b.workDir = d
	}
	switch b.database {
	case "sqlite":
	case "postgres":
		// Durable, as in production: fsync on, and by default each commit
		// waits for its flush.
		pg, err := pgtest.Launch("fsync=on", "full_page_writes=on", "synchronous_commit="+b.pgSync)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: cannot start PostgreSQL:", err)
			os.Exit(1)
		}
		defer pg.Stop()
		b.pg = pg
		b.progress("PostgreSQL on %s (fsync=on, synchronous_commit=%s)", pg.Addr(), b.pgSync)
	default:
		fmt.Fprintln(os.Stderr, "bench: -database must be sqlite or postgres")
		os.Exit(2)
	}
	if b.pg != nil {
		b.set("database.postgres", 1) // the JSON says which database was measured
	}
	b.ctl = redis.NewClient(&redis.Options{Addr: b.redisAddr, PoolSize: 1, MinIdleConns: 0})
	defer b.ctl.Close()
	b.on, b.ctls = b.redisAddr, map[string][]*redis.Client{b.redisAddr: {b.ctl}}
	if b.cluster != "" {
		b.ctls[b.cluster] = controls(b.cluster)
	}
	for _, cs := range b.ctls {
		for _, c := range cs {
			if err := c.Ping(context.Background()).Err(); err != nil {
				fmt.Fprintf(os.Stderr, "bench: cannot reach Redis at %s: %v\n", c.Options().Addr, err)
				os.Exit(1)
			}
			defer c.Close()
		}
	}
	scenarios := []struct {
		name string
		run  func() error
	}{
		{"drain", b.scenarioDrain},
		{"limits", b.scenarioLimits},
		{"enqueue", b.scenarioEnqueue},
		{"latency", b.scenarioLatency},
		{"delayed", b.scenarioDelayed},
		{"retry", b.scenarioRetry},
		{"memory", b.scenarioMemory},
		{"binary", b.scenarioBinaryWorker},
		{"web", b.scenarioWeb},
		{"web-jobs", b.scenarioWebJobs},
	}
	want := map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		want[strings.TrimSpace(s)] = true
	}
	t0 := time.Now()
	for _, s := range scenarios {
		if !want[s.name] {
			continue
		}
		st := time.Now()
		b.progress("== %s", s.name)
		if err := s.run(); err != nil {
			b.fail(s.name, err)
		}
		b.progress("== %s took %s", s.name, time.Since(st).Round(100*time.Millisecond))
	}
	if b.svc != nil {
		b.svc.close()
	}
	b.set("bench.seconds", time.Since(t0).Seconds())
	b.report(os.Stdout)
	if len(b.errs) > 0 {
		// Some figure could not be measured (targets missed are not errors).
		os.Exit(1)
	}
}

func (b *bench) progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func (b *bench) set(key string, v float64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.results[key] = v
}

func (b *bench) get(key string) (float64, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.results[key]
	return v, ok
}

func (b *bench) fail(scenario string, err error) {
	b.progress("%s: ERROR: %v", scenario, err)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.errs = append(b.errs, scenario+": "+err.Error())
}

// fresh empties Redis (the target clients connect to now: every server of a
// cluster) once no client but the control one is connected.
func (b *bench) fresh() error {
	others, err := freshTarget(context.Background(), b.ctls[b.on])
	if err != nil {
		return fmt.Errorf("FLUSHALL: %w", err)
	}
	if others > 0 {
		b.progress("warning: %d other Redis clients still connected at FLUSHALL", others)
	}
	return nil
}

// --- producers -------------------------------------------------------------------

// errandProducer is errand's Go API: queue.Client over its own go-redis client.
type errandProducer struct {
	rdb redis.UniversalClient
	cli *queue.Client
}

func (b *bench) newErrandProducer() (*errandProducer, error) {
	cfg, err := errandConfig(b.on, 0, "", "")
	if err != nil {
		return nil, err
	}
	reg, err := errandRegistry(cfg, nil)
	if err != nil {
		return nil, err
	}
	rdb := redisconn.New(cfg.Redis)
	return &errandProducer{rdb: rdb, cli: queue.NewClient(reg, rdb)}, nil
}

func (p *errandProducer) close() { _ = p.cli.Close(); _ = p.rdb.Close() }

func (b *bench) newAsynqClient() *asynq.Client {
	return asynq.NewClient(asynqConn(b.on))
}

// produce calls push(i) for i in [0, n) from the given number of goroutines
// and returns how long it took; it stops at the first error.
func produce(n, producers int, push func(ctx context.Context, i int) error) (time.Duration, error) {
	ctx := context.Background()
	var next atomic.Int64
	var failed atomic.Bool
	var once sync.Once
	var firstErr error
	var wg sync.WaitGroup
	t0 := time.Now()
	for range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := push(ctx, i); err != nil {
					once.Do(func() { firstErr = fmt.Errorf("job %d: %w", i, err) })
					failed.Store(true)
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(t0), firstErr
}

// enqueueNoops queues n ops:noop jobs with impl's client; it returns jobs/s.
func (b *bench) enqueueNoops(impl string, n, producers int) (float64, error) {
	var took time.Duration
	var err error
	switch impl {
	case "errand":
		p, perr := b.newErrandProducer()
		if perr != nil {
			return 0, perr
		}
		defer p.close()
		took, err = produce(n, producers, func(ctx context.Context, _ int) error {
			_, err := p.cli.Push(ctx, jobs.Noop{})
			return err
		})
	default:
		c := b.newAsynqClient()
		defer c.Close()
		took, err = produce(n, producers, func(ctx context.Context, _ int) error {
			_, err := c.EnqueueContext(ctx, asynq.NewTask(noopType, []byte("{}")))
			return err
		})
	}
	if err != nil {
		return 0, err
	}
	return float64(n) / took.Seconds(), nil
}

var impls = []string{"errand", "asynq"}

func (b *bench) childOpts(impl, mode string, expect int) childOpts {
	return childOpts{impl: impl, mode: mode, concurrency: b.concurrency, expect: int64(expect), queues: b.errandQueues, logLevel: b.errandLogLevel}
}

// --- scenarios ---------------------------------------------------------------------

// scenarioDrain: n no-op jobs queued, then a worker started with concurrency
// 50 → jobs/s from the worker's start to the last job's completion. The same
// run gives each worker's peak RSS. With -cluster, each round also drains on
// the cluster (figures drain_cluster.*), right after the standalone server.
func (b *bench) scenarioDrain() error {
	rates := map[string][]float64{}
	rss := map[string]float64{}
	targets := []string{b.redisAddr}
	if b.cluster != "" {
		targets = append(targets, b.cluster)
	}
	defer func() { b.on = b.redisAddr }()
	cpuPerJob := map[string][]float64{}
	for round := range b.rounds {
		order := slices.Clone(targets)
		if round%2 == 1 {
			// Neither deployment always runs on a machine warmed up by the other.
			slices.Reverse(order)
		}
		for _, target := range order {
			b.on = target
			prefix, where := "drain.", ""
			if isCluster(target) {
				prefix, where = "drain_cluster.", " on the cluster"
			}
			for _, impl := range roundOrder(round) {
				if err := b.fresh(); err != nil {
					return err
				}
				rate, err := b.enqueueNoops(impl, b.drainJobs, b.producers)
				if err != nil {
					return fmt.Errorf("%s%s: enqueue: %w", impl, where, err)
				}
				b.progress("drain: %s queued %d jobs%s (%.0f jobs/s)", impl, b.drainJobs, where, rate)
				cpu0, calls0, err := redisCost(context.Background(), b.ctls[target])
				if err != nil {
					return fmt.Errorf("%s%s: %w", impl, where, err)
				}
				c, err := b.startChild(b.childOpts(impl, "noop", b.drainJobs))
				if err != nil {
					return fmt.Errorf("%s%s: %w", impl, where, err)
				}
				werr := c.waitEvent("done", b.drainTimeout)
				cpu1, calls1, cerr := redisCost(context.Background(), b.ctls[target])
				res, serr := c.stop(60 * time.Second)
				if cerr != nil && werr == nil {
					werr = cerr
				}
				if werr != nil {
					return fmt.Errorf("%s%s: %w (%d of %d done)", impl, where, werr, res.Count, b.drainJobs)
				}
				if serr != nil {
					return fmt.Errorf("%s%s: %w", impl, where, serr)
				}
				secs := float64(res.DoneNS-res.StartNS) / 1e9
				rates[prefix+impl] = append(rates[prefix+impl], float64(b.drainJobs)/secs)
				if !isCluster(target) {
					rss[impl] = max(rss[impl], float64(res.VmHWMKB)/1024)
				}
				perJob := (cpu1 - cpu0) / float64(b.drainJobs) * 1e6
				cpuPerJob[prefix+impl] = append(cpuPerJob[prefix+impl], perJob)
				b.progress("drain: %s drained %d jobs%s in %.2fs (%.0f jobs/s), peak RSS %.1f MB; per job: worker %.1f µs CPU, Redis %.1f µs CPU and %.2f commands",
					impl, b.drainJobs, where, secs, float64(b.drainJobs)/secs, float64(res.VmHWMKB)/1024,
					float64(res.CPUNS)/1e3/float64(b.drainJobs), perJob, float64(calls1-calls0)/float64(b.drainJobs))
			}
		}
	}
	for _, impl := range impls {
		b.set("drain."+impl+"_jobs_per_s", median(rates["drain."+impl]))
		b.set("rss."+impl+"_peak_mb", rss[impl])
		if b.cluster != "" {
			b.set("drain_cluster."+impl+"_jobs_per_s", median(rates["drain_cluster."+impl]))
			b.set("drain."+impl+"_redis_cpu_us_per_job", median(cpuPerJob["drain."+impl]))
			b.set("drain_cluster."+impl+"_redis_cpu_us_per_job", median(cpuPerJob["drain_cluster."+impl]))
		}
	}
	return nil
}

// scenarioLimits: the drain of scenarioDrain by errand alone, with each
// no-op first asking the service gate of a service whose [limits] are never
// reached (gated), beside the same drain without (plain), the two in turn →
// the cost of a limiter that is not hit.
func (b *bench) scenarioLimits() error {
	rates := map[string][]float64{}
	for round := range b.rounds {
		modes := []string{"noop", "gated"}
		if round%2 == 1 {
			modes = []string{"gated", "noop"}
		}
		for _, mode := range modes {
			if err := b.fresh(); err != nil {
				return err
			}
			if _, err := b.enqueueNoops("errand", b.drainJobs, b.producers); err != nil {
				return fmt.Errorf("%s: enqueue: %w", mode, err)
			}
			c, err := b.startChild(b.childOpts("errand", mode, b.drainJobs))
			if err != nil {
				return fmt.Errorf("%s: %w", mode, err)
			}
			werr := c.waitEvent("done", b.drainTimeout)
			res, serr := c.stop(60 * time.Second)
			if werr != nil {
				return fmt.Errorf("%s: %w (%d of %d done)", mode, werr, res.Count, b.drainJobs)
			}
			if serr != nil {
				return fmt.Errorf("%s: %w", mode, serr)
			}
			secs := float64(res.DoneNS-res.StartNS) / 1e9
			rates[mode] = append(rates[mode], float64(b.drainJobs)/secs)
			b.progress("limits: errand %s drained %d jobs in %.2fs (%.0f jobs/s)", mode, b.drainJobs, secs, float64(b.drainJobs)/secs)
		}
	}
	b.set("limits.errand_plain_jobs_per_s", median(rates["noop"]))
	b.set("limits.errand_gated_jobs_per_s", median(rates["gated"]))
	return nil
}

// roundOrder alternates which implementation goes first, so that neither
// always runs on a Redis (or a machine) warmed up by the other.
func roundOrder(round int) []string {
	if round%2 == 0 {
		return impls
	}
	return []string{impls[1], impls[0]}
}

// median of rates (the middle one, or the mean of the two middle ones).
func median(rates []float64) float64 {
	s := slices.Sorted(slices.Values(rates))
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// scenarioEnqueue: producers pushing no-op jobs, errand's queue.Client.Push vs
// asynq.Client.Enqueue → jobs/s.
func (b *bench) scenarioEnqueue() error {
	rates := map[string][]float64{}
	for round := range b.rounds {
		for _, impl := range roundOrder(round) {
			if err := b.fresh(); err != nil {
				return err
			}
			rate, err := b.enqueueNoops(impl, b.enqueueJobs, b.producers)
			if err != nil {
				return fmt.Errorf("%s: %w", impl, err)
			}
			rates[impl] = append(rates[impl], rate)
			b.progress("enqueue: %s %.0f jobs/s (%d jobs, %d producers)", impl, rate, b.enqueueJobs, b.producers)
		}
	}
	for _, impl := range impls {
		b.set("enqueue."+impl+"_jobs_per_s", median(rates[impl]))
	}
	return nil
}

// scenarioLatency: a worker started on an empty Redis; after it settles, its
// Redis commands over a quiet period; then immediate jobs at a steady rate →
// enqueue-to-start latency.
func (b *bench) scenarioLatency() error {
	for _, impl := range impls {
		if err := b.fresh(); err != nil {
			return err
		}
		c, err := b.startChild(b.childOpts(impl, "probe", b.latencyJobs))
		if err != nil {
			return fmt.Errorf("%s: %w", impl, err)
		}
		err = b.latencyRun(impl, c)
		if _, serr := c.stop(60 * time.Second); err == nil && serr != nil {
			err = serr
		}
		if err != nil {
			return fmt.Errorf("%s: %w", impl, err)
		}
	}
	return nil
}

func (b *bench) latencyRun(impl string, c *child) error {
	time.Sleep(b.settle)
	cps, err := idleCommandsPerSecond(context.Background(), b.ctl, b.idle)
	if err != nil {
		return err
	}
	b.set("idle."+impl+"_redis_cmds_per_s", cps)
	b.progress("idle: %s worker ran %.1f Redis commands/s over %s", impl, cps, b.idle)

	queued := make([]int64, b.latencyJobs)
	var push func(ctx context.Context, p probeJob) error
	if impl == "errand" {
		p, err := b.newErrandProducer()
		if err != nil {
			return err
		}
		defer p.close()
		push = func(ctx context.Context, j probeJob) error { _, err := p.cli.Push(ctx, j); return err }
	} else {
		ac := b.newAsynqClient()
		defer ac.Close()
		push = func(ctx context.Context, j probeJob) error {
			payload, err := json.Marshal(j)
			if err != nil {
				return err
			}
			_, err = ac.EnqueueContext(ctx, asynq.NewTask(probeType, payload))
			return err
		}
	}
	interval := time.Second / time.Duration(b.latencyRate)
	t0 := time.Now()
	for i := range b.latencyJobs {
		if d := time.Until(t0.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		now := time.Now()
		queued[i] = now.UnixNano()
		if err := push(context.Background(), probeJob{N: i, T: now.UnixNano()}); err != nil {
			return fmt.Errorf("enqueue job %d: %w", i, err)
		}
	}
	werr := c.waitEvent("done", 30*time.Second)
	res, err := c.stop(60 * time.Second)
	if err != nil {
		return err
	}
	var lat []time.Duration
	missing := 0
	for i, q := range queued {
		if i >= len(res.Starts) || res.Starts[i] == 0 {
			missing++
			continue
		}
		lat = append(lat, time.Duration(res.Starts[i]-q))
	}
	d := summarise(lat)
	b.set("latency."+impl+"_p50_ms", d.P50)
	b.set("latency."+impl+"_p99_ms", d.P99)
	b.set("latency."+impl+"_max_ms", d.Max)
	b.set("latency."+impl+"_missing", float64(missing))
	b.progress("latency: %s p50 %.2fms p99 %.2fms max %.2fms, %d of %d never started", impl, d.P50, d.P99, d.Max, missing, b.latencyJobs)
	if werr != nil {
		return werr
	}
	return nil
}

// scenarioDelayed: jobs due at random instants within the window → how many
// started before their due instant, and lateness.
func (b *bench) scenarioDelayed() error {
	for _, impl := range impls {
		if err := b.fresh(); err != nil {
			return err
		}
		c, err := b.startChild(b.childOpts(impl, "probe", b.delayedJobs))
		if err != nil {
			return fmt.Errorf("%s: %w", impl, err)
		}
		err = b.delayedRun(impl, c)
		if _, serr := c.stop(60 * time.Second); err == nil && serr != nil {
			err = serr
		}
		if err != nil {
			return fmt.Errorf("%s: %w", impl, err)
		}
	}
	return nil
}

func (b *bench) delayedRun(impl string, c *child) error {
	time.Sleep(time.Second) // the worker is up and polling
	due := make([]int64, b.delayedJobs)
	ctx := context.Background()
	if impl == "errand" {
		p, err := b.newErrandProducer()
		if err != nil {
			return err
		}
		defer p.close()
		for i := range b.delayedJobs {
			d := rand.N(b.delayedWindow)
			e, err := p.cli.Later(ctx, d, probeJob{N: i})
			if err != nil {
				return fmt.Errorf("enqueue job %d: %w", i, err)
			}
			// The instant errand was asked for (now + d, taken inside Later).
			due[i] = e.DueAt.UnixNano()
		}
	} else {
		ac := b.newAsynqClient()
		defer ac.Close()
		for i := range b.delayedJobs {
			at := time.Now().Add(rand.N(b.delayedWindow))
			payload, _ := json.Marshal(probeJob{N: i})
			if _, err := ac.EnqueueContext(ctx, asynq.NewTask(probeType, payload), asynq.ProcessAt(at)); err != nil {
				return fmt.Errorf("enqueue job %d: %w", i, err)
			}
			due[i] = at.UnixNano()
		}
	}
	werr := c.waitEvent("done", b.delayedWindow+20*time.Second)
	res, err := c.stop(60 * time.Second)
	if err != nil {
		return err
	}
	var late []time.Duration
	early, missing := 0, 0
	var maxEarly time.Duration
	for i, d := range due {
		if i >= len(res.Starts) || res.Starts[i] == 0 {
			missing++
			continue
		}
		l := time.Duration(res.Starts[i] - d)
		if l < 0 {
			early++
			maxEarly = max(maxEarly, -l)
		}
		late = append(late, l)
	}
	s := summarise(late)
	b.set("delayed."+impl+"_early", float64(early))
	b.set("delayed."+impl+"_max_early_ms", ms(maxEarly))
	b.set("delayed."+impl+"_lateness_p50_ms", s.P50)
	b.set("delayed."+impl+"_lateness_p99_ms", s.P99)
	b.set("delayed."+impl+"_lateness_max_ms", s.Max)
	b.set("delayed."+impl+"_missing", float64(missing))
	b.progress("delayed: %s %d of %d early (by up to %.1fms), lateness p50 %.1fms p99 %.1fms max %.1fms, %d never started",
		impl, early, b.delayedJobs, ms(maxEarly), s.P50, s.P99, s.Max, missing)
	return werr
}

// scenarioRetry: jobs that fail twice and then succeed, with no backoff →
// completed jobs/s from the worker's start.
func (b *bench) scenarioRetry() error {
	for _, impl := range impls {
		if err := b.fresh(); err != nil {
			return err
		}
		var err error
		if impl == "errand" {
			p, perr := b.newErrandProducer()
			if perr != nil {
				return perr
			}
			_, err = produce(b.retryJobs, b.producers, func(ctx context.Context, i int) error {
				_, err := p.cli.Push(ctx, flakyJob{N: i})
				return err
			})
			p.close()
		} else {
			ac := b.newAsynqClient()
			_, err = produce(b.retryJobs, b.producers, func(ctx context.Context, i int) error {
				payload, _ := json.Marshal(flakyJob{N: i})
				_, err := ac.EnqueueContext(ctx, asynq.NewTask(flakyType, payload))
				return err
			})
			ac.Close()
		}
		if err != nil {
			return fmt.Errorf("%s: enqueue: %w", impl, err)
		}
		c, err := b.startChild(b.childOpts(impl, "flaky", b.retryJobs))
		if err != nil {
			return fmt.Errorf("%s: %w", impl, err)
		}
		werr := c.waitEvent("done", b.drainTimeout)
		res, serr := c.stop(60 * time.Second)
		if werr != nil {
			return fmt.Errorf("%s: %w (%d of %d completed, %d attempts)", impl, werr, res.Count, b.retryJobs, res.Attempts)
		}
		if serr != nil {
			return fmt.Errorf("%s: %w", impl, serr)
		}
		secs := float64(res.DoneNS-res.StartNS) / 1e9
		b.set("retry."+impl+"_jobs_per_s", float64(b.retryJobs)/secs)
		b.progress("retry: %s completed %d jobs (%d attempts) in %.2fs (%.0f jobs/s)", impl, b.retryJobs, res.Attempts, secs, float64(b.retryJobs)/secs)
	}
	return nil
}

// scenarioMemory: Redis used_memory per delayed job with a fixed-size payload.
func (b *bench) scenarioMemory() error {
	ctx := context.Background()
	for _, impl := range impls {
		if err := b.fresh(); err != nil {
			return err
		}
		var push func(i int) error
		var closeFn func()
		if impl == "errand" {
			p, err := b.newErrandProducer()
			if err != nil {
				return err
			}
			if err := p.rdb.Ping(ctx).Err(); err != nil {
				p.close()
				return err
			}
			closeFn = p.close
			push = func(i int) error {
				j, _, err := paddedProbe(i, b.payloadBytes)
				if err != nil {
					return err
				}
				_, err = p.cli.Later(ctx, time.Hour, j)
				return err
			}
		} else {
			ac := b.newAsynqClient()
			if err := ac.Ping(); err != nil {
				ac.Close()
				return err
			}
			closeFn = func() { ac.Close() }
			push = func(i int) error {
				_, payload, err := paddedProbe(i, b.payloadBytes)
				if err != nil {
					return err
				}
				_, err = ac.EnqueueContext(ctx, asynq.NewTask(probeType, payload), asynq.ProcessAt(time.Now().Add(time.Hour)))
				return err
			}
		}
		before, err := infoField(ctx, b.ctl, "memory", "used_memory")
		if err == nil {
			for i := range b.memoryJobs {
				if err = push(i); err != nil {
					err = fmt.Errorf("enqueue job %d: %w", i, err)
					break
				}
			}
		}
		var after int64
		if err == nil {
			after, err = infoField(ctx, b.ctl, "memory", "used_memory")
		}
		closeFn()
		if err != nil {
			return fmt.Errorf("%s: %w", impl, err)
		}
		per := float64(after-before) / float64(b.memoryJobs)
		b.set("memory."+impl+"_bytes_per_delayed_job", per)
		b.progress("memory: %s %.0f bytes per delayed job (%d jobs, %d-byte payload)", impl, per, b.memoryJobs, b.payloadBytes)
	}
	return nil
}

// scenarioBinaryWorker: `bin/errand worker --concurrency N` as shipped (with
// its periodic scheduler, store and handlers) drains the no-op jobs; its peak
// RSS, then its Redis commands/s once idle.
func (b *bench) scenarioBinaryWorker() error {
	if err := b.fresh(); err != nil {
		return err
	}
	if _, err := b.enqueueNoops("errand", b.drainJobs, b.producers); err != nil {
		return fmt.Errorf("enqueue: %w", err)
	}
	env, err := b.newEnv("binary-worker", nil, false, true, "--concurrency", fmt.Sprint(b.concurrency))
	if err != nil {
		return err
	}
	defer env.stop()
	ctx := context.Background()
	pending := func() (int64, error) {
		p, err := b.ctl.LLen(ctx, rdb.PendingKey("default")).Result()
		if err != nil {
			return 0, err
		}
		a, err := b.ctl.LLen(ctx, rdb.ActiveKey("default")).Result()
		return p + a, err
	}
	var started time.Time
	deadline := time.Now().Add(b.drainTimeout)
	for {
		n, err := pending()
		if err != nil {
			return err
		}
		if started.IsZero() && n < int64(b.drainJobs) {
			started = time.Now()
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d jobs left after %s", n, b.drainTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	secs := time.Since(started).Seconds()
	pid := fmt.Sprint(env.proc("worker").cmd.Process.Pid)
	hwm, _ := procStatus(pid)
	b.set("binary.errand_drain_jobs_per_s", float64(b.drainJobs)/secs)
	b.set("rss.errand_binary_peak_mb", float64(hwm)/1024)
	b.progress("binary: bin/errand worker drained %d jobs in %.2fs (%.0f jobs/s), peak RSS %.1f MB", b.drainJobs, secs, float64(b.drainJobs)/secs, float64(hwm)/1024)
	time.Sleep(b.settle)
	cps, err := idleCommandsPerSecond(ctx, b.ctl, b.idle)
	if err != nil {
		return err
	}
	b.set("idle.errand_binary_redis_cmds_per_s", cps)
	b.progress("binary: idle bin/errand worker ran %.1f Redis commands/s", cps)
	return nil
}

// scenarioWeb: bin/errand serve under load from a closed-loop generator:
// POST /api/jobs; bcrypt alone at the users' concurrency; POST /api/users with
// the services answering at once, then after slowLatency.
func (b *bench) scenarioWeb() error {
	if b.svc == nil {
		s, err := startServices()
		if err != nil {
			return err
		}
		b.svc = s
	}
	var errs []string
	if err := b.webJobs(); err != nil {
		errs = append(errs, "POST /api/jobs: "+err.Error())
	}
	b.bcryptAlone()
	for _, slow := range []bool{false, true} {
		if err := b.webUsers(slow); err != nil {
			errs = append(errs, fmt.Sprintf("POST /api/users (slow=%v): %v", slow, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// scenarioWebJobs is the POST /api/jobs part of scenarioWeb alone: the one
// that writes to the database at load.
func (b *bench) scenarioWebJobs() error {
	if b.svc == nil {
		s, err := startServices()
		if err != nil {
			return err
		}
		b.svc = s
	}
	return b.webJobs()
}

// databaseURL is database.url for the errand processes working in dir.
func (b *bench) databaseURL(dir string) (string, error) {
	if b.pg == nil {
		return "file:" + filepath.Join(dir, "errand.db"), nil
	}
	name, err := b.pg.CreateDatabase()
	if err != nil {
		return "", err
	}
	return b.pg.URL(name), nil
}

func (b *bench) recordLoad(prefix string, st loadStats) {
	d := summarise(st.Lat)
	b.set(prefix+"_per_s", st.rate())
	b.set(prefix+"_p50_ms", d.P50)
	b.set(prefix+"_p99_ms", d.P99)
	b.set(prefix+"_max_ms", d.Max)
	b.set(prefix+"_failed", float64(st.Failed))
	msg := ""
	if st.FirstErr != "" {
		msg = " first error: " + st.FirstErr
	}
	b.progress("%s: %.0f/s p50 %.2fms p99 %.2fms max %.2fms, %d failed%s", prefix, st.rate(), d.P50, d.P99, d.Max, st.Failed, msg)
}

func (b *bench) webJobs() error {
	if err := b.fresh(); err != nil {
		return err
	}
	env, err := b.newEnv("web-jobs", b.svc, true, false)
	if err != nil {
		return err
	}
	defer env.stop()
	client := httpClient(b.jobsConc)
	defer client.CloseIdleConnections()
	body := []byte(`{"type":"ops:noop","payload":{}}`)
	url := env.base + "/api/jobs"
	st := runLoad(b.jobsConc, b.webWarmup, b.webDuration, func(int64) error {
		return post(context.Background(), client, url, body, 202, "Authorization", "Bearer "+benchToken)
	})
	b.recordLoad("web.api_jobs_req", st)
	if len(st.Lat) == 0 {
		return fmt.Errorf("no request succeeded: %s", st.FirstErr)
	}
	return nil
}

const benchPassword = "correct horse battery staple"

func (b *bench) bcryptAlone() {
	st := runLoad(b.usersConc, b.webWarmup, b.webDuration, func(int64) error {
		_, err := bcrypt.GenerateFromPassword([]byte(benchPassword), bcrypt.DefaultCost)
		return err
	})
	b.recordLoad("web.bcrypt_alone", st)
}

func (b *bench) webUsers(slow bool) error {
	name, wait := "fast", time.Duration(0)
	if slow {
		name, wait = "slow", b.slowLatency
	}
	if err := b.fresh(); err != nil {
		return err
	}
	b.svc.slow(wait)
	defer b.svc.slow(0)
	env, err := b.newEnv("web-users-"+name, b.svc, true, b.usersWorker)
	if err != nil {
		return err
	}
	defer env.stop()
	client := httpClient(b.usersConc)
	defer client.CloseIdleConnections()
	url := env.base + "/api/users"
	calls0, mails0 := b.svc.calls.Load(), b.svc.mails.Load()
	st := runLoad(b.usersConc, b.webWarmup, b.webDuration, func(seq int64) error {
		body, _ := json.Marshal(map[string]string{
			"email": fmt.Sprintf("user%d-%s@bench.test", seq, name), "first_name": "Ada", "last_name": "Lovelace",
			"password": benchPassword,
		})
		return post(context.Background(), client, url, body, 201)
	})
	prefix := "web.api_users_" + name + "_req"
	b.recordLoad(prefix, st)
	b.set("web.api_users_"+name+"_service_calls", float64(b.svc.calls.Load()-calls0))
	b.set("web.api_users_"+name+"_emails", float64(b.svc.mails.Load()-mails0))
	b.progress("web: during POST /api/users (%s services) the worker made %d service calls and sent %d emails",
		name, b.svc.calls.Load()-calls0, b.svc.mails.Load()-mails0)
	if len(st.Lat) == 0 {
		return fmt.Errorf("no request succeeded: %s", st.FirstErr)
	}
	return nil
}

// --- report --------------------------------------------------------------------------

type row struct {
	scenario, errand, asynq, ratio, target, met string
}

func (b *bench) val(key string, format string) string {
	v, ok := b.get(key)
	if !ok {
		return "n/a"
	}
	return fmt.Sprintf(format, v)
}

func (b *bench) ratio(e, a string) (float64, string) {
	ev, ok1 := b.get(e)
	av, ok2 := b.get(a)
	if !ok1 || !ok2 || av == 0 {
		return math.NaN(), "n/a"
	}
	return ev / av, fmt.Sprintf("%.2f×", ev/av)
}

// check records whether a target was met; "n/a" when the figure is missing.
func (b *bench) check(targets map[string]any, name string, ok bool, have bool) string {
	if !have {
		targets[name] = nil
		return "n/a"
	}
	targets[name] = ok
	if ok {
		return "yes"
	}
	return "NO"
}

func (b *bench) report(w io.Writer) {
	targets := map[string]any{}
	var rows []row
	add := func(r row) { rows = append(rows, r) }
	has := func(keys ...string) bool {
		for _, k := range keys {
			if _, ok := b.get(k); !ok {
				return false
			}
		}
		return true
	}
	g := func(k string) float64 { v, _ := b.get(k); return v }

	r, rs := b.ratio("drain.errand_jobs_per_s", "drain.asynq_jobs_per_s")
	add(row{fmt.Sprintf("drain %d no-op jobs, conc %d (jobs/s)", b.drainJobs, b.concurrency), b.val("drain.errand_jobs_per_s", "%.0f"), b.val("drain.asynq_jobs_per_s", "%.0f"), rs,
		"≥ 2.5× asynq", b.check(targets, "drain", r >= 2.5, !math.IsNaN(r))})
	if b.cluster != "" {
		r, _ = b.ratio("drain_cluster.errand_jobs_per_s", "drain.errand_jobs_per_s")
		_, rs = b.ratio("drain_cluster.errand_jobs_per_s", "drain_cluster.asynq_jobs_per_s")
		add(row{fmt.Sprintf("drain on a %d-master cluster (jobs/s)", len(clusterAddrs(b.cluster))), b.val("drain_cluster.errand_jobs_per_s", "%.0f"), b.val("drain_cluster.asynq_jobs_per_s", "%.0f"), rs,
			"≥ 0.9× errand standalone", b.check(targets, "drain_cluster", r >= 0.9, !math.IsNaN(r))})
		if !math.IsNaN(r) {
			b.set("drain_cluster.errand_vs_standalone", r)
		}
	}
	r, rs = b.ratio("limits.errand_gated_jobs_per_s", "limits.errand_plain_jobs_per_s")
	add(row{"drain, each job asking a gate never hit (jobs/s): gated / plain errand", b.val("limits.errand_gated_jobs_per_s", "%.0f") + " / " + b.val("limits.errand_plain_jobs_per_s", "%.0f"), "–", rs,
		"≥ 0.95×", b.check(targets, "limits", r >= 0.95, !math.IsNaN(r))})
	r, rs = b.ratio("enqueue.errand_jobs_per_s", "enqueue.asynq_jobs_per_s")
	add(row{fmt.Sprintf("enqueue, %d producers, Go API (jobs/s)", b.producers), b.val("enqueue.errand_jobs_per_s", "%.0f"), b.val("enqueue.asynq_jobs_per_s", "%.0f"), rs,
		"≥ 0.95× asynq", b.check(targets, "enqueue", r >= 0.95, !math.IsNaN(r))})
	add(row{fmt.Sprintf("enqueue, POST /api/jobs, %d clients (req/s)", b.jobsConc), b.val("web.api_jobs_req_per_s", "%.0f"), "–", "", "≥ 5000 (web)", "see web"})
	_, rs = b.ratio("latency.errand_p50_ms", "latency.asynq_p50_ms")
	add(row{fmt.Sprintf("latency %d jobs at %d/s, p50 (ms)", b.latencyJobs, b.latencyRate), b.val("latency.errand_p50_ms", "%.2f"), b.val("latency.asynq_p50_ms", "%.2f"), rs, "", ""})
	_, rs = b.ratio("latency.errand_p99_ms", "latency.asynq_p99_ms")
	add(row{"latency p99 (ms)", b.val("latency.errand_p99_ms", "%.2f"), b.val("latency.asynq_p99_ms", "%.2f"), rs,
		"≤ 5 ms", b.check(targets, "latency_p99", g("latency.errand_p99_ms") <= 5 && g("latency.errand_missing") == 0, has("latency.errand_p99_ms"))})
	_, rs = b.ratio("idle.errand_redis_cmds_per_s", "idle.asynq_redis_cmds_per_s")
	add(row{"idle worker Redis commands/s", b.val("idle.errand_redis_cmds_per_s", "%.1f"), b.val("idle.asynq_redis_cmds_per_s", "%.1f"), rs,
		"≤ 50/s", b.check(targets, "idle_redis", g("idle.errand_redis_cmds_per_s") <= 50, has("idle.errand_redis_cmds_per_s"))})
	add(row{"idle bin/errand worker (with scheduler) cmds/s", b.val("idle.errand_binary_redis_cmds_per_s", "%.1f"), "–", "", "(info)", ""})
	add(row{fmt.Sprintf("delayed %d jobs in %s: started early", b.delayedJobs, b.delayedWindow), b.val("delayed.errand_early", "%.0f"), b.val("delayed.asynq_early", "%.0f"), "",
		"0", b.check(targets, "delayed_early", g("delayed.errand_early") == 0 && g("delayed.errand_missing") == 0, has("delayed.errand_early"))})
	add(row{"delayed: most early (ms)", b.val("delayed.errand_max_early_ms", "%.1f"), b.val("delayed.asynq_max_early_ms", "%.1f"), "", "", ""})
	add(row{"delayed lateness p50 (ms)", b.val("delayed.errand_lateness_p50_ms", "%.1f"), b.val("delayed.asynq_lateness_p50_ms", "%.1f"), "", "", ""})
	add(row{"delayed lateness p99 (ms)", b.val("delayed.errand_lateness_p99_ms", "%.1f"), b.val("delayed.asynq_lateness_p99_ms", "%.1f"), "",
		"≤ 20 ms", b.check(targets, "delayed_p99", g("delayed.errand_lateness_p99_ms") <= 20, has("delayed.errand_lateness_p99_ms"))})
	add(row{"delayed lateness max (ms)", b.val("delayed.errand_lateness_max_ms", "%.1f"), b.val("delayed.asynq_lateness_max_ms", "%.1f"), "", "", ""})
	_, rs = b.ratio("retry.errand_jobs_per_s", "retry.asynq_jobs_per_s")
	add(row{fmt.Sprintf("retry path %d jobs, 2 failures each (jobs/s)", b.retryJobs), b.val("retry.errand_jobs_per_s", "%.0f"), b.val("retry.asynq_jobs_per_s", "%.0f"), rs,
		"≥ 2500/s", b.check(targets, "retry", g("retry.errand_jobs_per_s") >= 2500, has("retry.errand_jobs_per_s"))})
	_, rs = b.ratio("memory.errand_bytes_per_delayed_job", "memory.asynq_bytes_per_delayed_job")
	add(row{fmt.Sprintf("Redis bytes per delayed job (%d B payload)", b.payloadBytes), b.val("memory.errand_bytes_per_delayed_job", "%.0f"), b.val("memory.asynq_bytes_per_delayed_job", "%.0f"), rs,
		"≤ 800", b.check(targets, "memory", g("memory.errand_bytes_per_delayed_job") <= 800, has("memory.errand_bytes_per_delayed_job"))})
	_, rs = b.ratio("rss.errand_peak_mb", "rss.asynq_peak_mb")
	add(row{fmt.Sprintf("worker peak RSS, drain at conc %d (MB)", b.concurrency), b.val("rss.errand_peak_mb", "%.1f"), b.val("rss.asynq_peak_mb", "%.1f"), rs,
		"≤ 40 MB", b.check(targets, "rss", g("rss.errand_peak_mb") <= 40, has("rss.errand_peak_mb"))})
	add(row{"bin/errand worker: drain (jobs/s) / peak RSS (MB)", b.val("binary.errand_drain_jobs_per_s", "%.0f") + " / " + b.val("rss.errand_binary_peak_mb", "%.1f"), "–", "", "(info)", ""})
	add(row{"web POST /api/jobs (req/s)", b.val("web.api_jobs_req_per_s", "%.0f"), "–", "",
		"≥ 5000", b.check(targets, "api_jobs_rate", g("web.api_jobs_req_per_s") >= 5000, has("web.api_jobs_req_per_s"))})
	add(row{"web POST /api/jobs p50 / p99 (ms)", b.val("web.api_jobs_req_p50_ms", "%.2f") + " / " + b.val("web.api_jobs_req_p99_ms", "%.2f"), "–", "",
		"p99 ≤ 20 ms", b.check(targets, "api_jobs_p99", g("web.api_jobs_req_p99_ms") <= 20 && g("web.api_jobs_req_failed") == 0, has("web.api_jobs_req_p99_ms"))})
	add(row{fmt.Sprintf("bcrypt alone, %d at once: p50 / p99 (ms)", b.usersConc), b.val("web.bcrypt_alone_p50_ms", "%.1f") + " / " + b.val("web.bcrypt_alone_p99_ms", "%.1f"), "–", "", "", ""})
	for _, name := range []string{"fast", "slow"} {
		p := "web.api_users_" + name + "_req"
		label := "services at once"
		if name == "slow" {
			label = fmt.Sprintf("services after %s", b.slowLatency)
		}
		add(row{fmt.Sprintf("web POST /api/users, %s: req/s, p50 / p99 (ms)", label),
			b.val(p+"_per_s", "%.1f") + ", " + b.val(p+"_p50_ms", "%.1f") + " / " + b.val(p+"_p99_ms", "%.1f"), "–", "", "", ""})
		have := has(p+"_p99_ms", "web.bcrypt_alone_p99_ms")
		over := g(p+"_p99_ms") - g("web.bcrypt_alone_p99_ms")
		if have {
			b.set("web.api_users_"+name+"_p99_over_bcrypt_ms", over)
		}
		add(row{"  users p99 − bcrypt p99 (ms), " + label, b.val("web.api_users_"+name+"_p99_over_bcrypt_ms", "%.1f"), "–", "",
			"≤ 10 ms", b.check(targets, "api_users_"+name+"_p99", over <= 10 && g(p+"_failed") == 0, have)})
	}
	haveBoth := has("web.api_users_fast_req_p99_ms", "web.api_users_slow_req_p99_ms")
	diff := math.Abs(g("web.api_users_slow_req_p99_ms") - g("web.api_users_fast_req_p99_ms"))
	if haveBoth {
		b.set("web.api_users_slow_vs_fast_p99_diff_ms", diff)
	}
	add(row{"  users p99 |slow − fast| (ms)", b.val("web.api_users_slow_vs_fast_p99_diff_ms", "%.1f"), "–", "",
		"same (≤ 10 ms)", b.check(targets, "api_users_same", diff <= 10, haveBoth)})

	// The table.
	head := row{"scenario", "errand", "asynq", "ratio", "target", "met?"}
	all := append([]row{head}, rows...)
	width := make([]int, 6)
	cells := func(r row) []string { return []string{r.scenario, r.errand, r.asynq, r.ratio, r.target, r.met} }
	for _, r := range all {
		for i, c := range cells(r) {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	line := func(r row) {
		var sb strings.Builder
		for i, c := range cells(r) {
			pad := width[i] - len([]rune(c))
			if i == 0 {
				sb.WriteString(c + strings.Repeat(" ", pad))
			} else {
				sb.WriteString("  " + strings.Repeat(" ", pad) + c)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(sb.String(), " "))
	}
	fmt.Fprintln(w)
	if b.label != "" {
		fmt.Fprintf(w, "errand %s vs asynq, Redis %s, %d CPUs\n\n", b.label, b.redisVersion(), runtime.NumCPU())
	}
	line(head)
	total := 0
	for _, n := range width {
		total += n + 2
	}
	fmt.Fprintln(w, strings.Repeat("-", total-2))
	for _, r := range rows {
		line(r)
	}
	met, missed, unknown := 0, 0, 0
	for _, v := range targets {
		switch v {
		case true:
			met++
		case false:
			missed++
		default:
			unknown++
		}
	}
	fmt.Fprintf(w, "\ntargets: %d met, %d missed, %d not measured\n", met, missed, unknown)
	b.mu.Lock()
	for _, e := range b.errs {
		fmt.Fprintln(w, "error:", e)
	}
	finite := map[string]float64{}
	for k, v := range b.results {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			finite[k] = v
		}
	}
	out := map[string]any{
		"results":  finite,
		"targets":  targets,
		"errors":   b.errs,
		"settings": b.settings(),
	}
	b.mu.Unlock()
	js, err := json.Marshal(out)
	if err != nil {
		fmt.Fprintln(w, `{"error":"cannot encode results"}`)
		return
	}
	fmt.Fprintln(w, string(js))
}

func (b *bench) redisVersion() string {
	s, err := b.ctl.Info(context.Background(), "server").Result()
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(s, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "redis_version:"); ok {
			return v
		}
	}
	return "?"
}

func (b *bench) settings() map[string]any {
	return map[string]any{
		"concurrency": b.concurrency, "producers": b.producers, "errand_queues": b.errandQueues, "errand_log_level": b.errandLogLevel,
		"rounds": b.rounds, "drain_jobs": b.drainJobs, "enqueue_jobs": b.enqueueJobs, "latency_jobs": b.latencyJobs, "latency_rate": b.latencyRate,
		"idle_s": b.idle.Seconds(), "delayed_jobs": b.delayedJobs, "delayed_window_s": b.delayedWindow.Seconds(),
		"retry_jobs": b.retryJobs, "memory_jobs": b.memoryJobs, "payload_bytes": b.payloadBytes,
		"web_duration_s": b.webDuration.Seconds(), "jobs_concurrency": b.jobsConc, "users_concurrency": b.usersConc,
		"slow_latency_s": b.slowLatency.Seconds(), "users_worker": b.usersWorker, "workdir": b.workDir,
		"label": b.label, "go_max_procs": runtime.GOMAXPROCS(0), "cluster": b.cluster,
	}
}
