#!/usr/bin/env bash
# Measures errand side by side with a plain asynq program on the same Redis
# (see scripts/bench/main.go for what each scenario does and how).
#
#   scripts/bench.sh                       # every scenario, the issue's sizes (~8 min)
#   scripts/bench.sh -scenarios drain,web  # some of them
#   scripts/bench.sh -database postgres -scenarios web-jobs
#                                          # POST /api/jobs on PostgreSQL (default: sqlite)
#   scripts/bench.sh -h                    # every size and option
#   BENCH_CPUPROFILE=dir scripts/bench.sh  # also writes each worker's CPU profile into dir
#
# Starts its own redis-server (no persistence) on a free loopback port in a
# temporary directory, builds bin/errand and the bench program, runs the
# bench, and prints a table and, last, one line of JSON with every figure.
# Installs redis-server with apt-get when it is missing. Redis, and every
# process the bench started, are stopped on exit; logs stay in the temporary
# directory when the bench fails (its path is printed).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf 'bench.sh: %s\n' "$*" >&2; }
die() {
	say "$*"
	exit 1
}

command -v go >/dev/null || die "go is not on PATH (errand needs Go 1.26)"

if ! command -v redis-server >/dev/null; then
	say "installing redis-server"
	sudo=""
	if [[ $(id -u) != 0 ]]; then
		command -v sudo >/dev/null || die "redis-server is missing and I am not root (no sudo)"
		sudo=sudo
	fi
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null
fi

# -database postgres: the bench starts its own PostgreSQL server from the
# Debian package (as the postgres user when run as root), as the tests do.
for ((i = 1; i <= $#; i++)); do
	arg=${!i}
	next=$((i + 1))
	if [[ $arg == -database=postgres || $arg == --database=postgres ||
		(($arg == -database || $arg == --database) && ${!next:-} == postgres) ]]; then
		if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
			say "installing postgresql"
			sudo=""
			if [[ $(id -u) != 0 ]]; then
				command -v sudo >/dev/null || die "postgresql is missing and I am not root (no sudo)"
				sudo=sudo
			fi
			$sudo apt-get update -qq
			DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
		fi
	fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/errand-bench.XXXXXX")
redis_pid=""
ok=0
cleanup() {
	if [[ -n $redis_pid ]] && kill -0 "$redis_pid" 2>/dev/null; then
		kill "$redis_pid" 2>/dev/null || true
		for _ in $(seq 50); do
			kill -0 "$redis_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$redis_pid" 2>/dev/null || true
	fi
	if ((ok)); then
		rm -rf "$tmp"
	else
		say "logs kept in $tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A free loopback port: pick one nobody answers on, then make sure our
# redis-server got it (another process may take it in between). Sets
# redis_port and redis_pid.
redis_port=""
start_redis() {
	local port
	for _ in $(seq 20); do
		port=$((20000 + RANDOM % 40000))
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			continue
		fi
		redis-server --bind 127.0.0.1 --port "$port" --dir "$tmp" --save "" --appendonly no \
			--protected-mode yes --daemonize no --logfile "$tmp/redis.log" &
		redis_pid=$!
		for _ in $(seq 50); do
			if [[ $(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null) == PONG ]]; then
				redis_port=$port
				return 0
			fi
			kill -0 "$redis_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill "$redis_pid" 2>/dev/null || true
		wait "$redis_pid" 2>/dev/null || true
		redis_pid=""
	done
	return 1
}

say "building bin/errand and the bench"
mkdir -p bin
go build -o bin/errand ./cmd/errand
go build -o "$tmp/bench" ./scripts/bench

start_redis || die "could not start redis-server (log: $tmp/redis.log)"
say "redis-server $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') on 127.0.0.1:$redis_port (pid $redis_pid), work dir $tmp"

label=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- . 2>/dev/null || label="$label+uncommitted"

"$tmp/bench" -redis "127.0.0.1:$redis_port" -errand-bin bin/errand -workdir "$tmp" -label "$label" "$@"
ok=1
