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
#   scripts/bench.sh -redis cluster        # drain on a 3-master Redis Cluster beside standalone Redis
#                                          # (-redis standalone, the default, runs every scenario)
#
# Starts its own redis-server (no persistence) on a free loopback port in a
# temporary directory, builds bin/errand and the bench program, runs the
# bench, and prints a table and, last, one line of JSON with every figure.
# Installs redis-server with apt-get when it is missing. Redis, and every
# process the bench started, are stopped on exit; logs stay in the temporary
# directory when the bench fails (its path is printed). With -redis cluster it
# also starts three redis-servers in cluster mode, joins them with
# `redis-cli --cluster create` (no replicas), and runs only the drain
# scenario, on both, round by round.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf 'bench.sh: %s\n' "$*" >&2; }
die() {
	say "$*"
	exit 1
}

command -v go >/dev/null || die "go is not on PATH (errand needs Go 1.26)"

# -redis standalone|cluster is bench.sh's; every other argument goes to the bench.
mode=standalone
args=()
while (($#)); do
	case $1 in
	-redis | --redis)
		(($# > 1)) || die "-redis needs standalone or cluster"
		mode=$2
		shift 2
		;;
	-redis=* | --redis=*)
		mode=${1#*=}
		shift
		;;
	*)
		args+=("$1")
		shift
		;;
	esac
done
case $mode in
standalone | cluster) ;;
*) die "-redis $mode: want standalone or cluster" ;;
esac

# redis-cli (redis-tools) forms the cluster of -redis cluster.
if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
	say "installing redis-server and redis-cli"
	sudo=""
	if [[ $(id -u) != 0 ]]; then
		command -v sudo >/dev/null || die "redis-server is missing and I am not root (no sudo)"
		sudo=sudo
	fi
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server redis-tools >/dev/null
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
cluster_pids=()
ok=0
stop_pid() {
	local pid=$1
	if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$pid" 2>/dev/null || true
	fi
}
cleanup() {
	stop_pid "$redis_pid"
	for pid in "${cluster_pids[@]}"; do
		stop_pid "$pid"
	done
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

# A port nobody answers on whose cluster bus port (port + 10000) is free too.
free_port() {
	local port
	for _ in $(seq 50); do
		port=$((20000 + RANDOM % 30000))
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || (exec 3<>"/dev/tcp/127.0.0.1/$((port + 10000))") 2>/dev/null; then
			continue
		fi
		echo "$port"
		return 0
	done
	return 1
}

# Three masters in cluster mode, joined with redis-cli --cluster create (no
# replicas), each with the standalone server's settings. Sets cluster_addrs.
cluster_addrs=""
start_cluster() {
	local addrs=() port dir pid
	for i in 1 2 3; do
		port=$(free_port) || return 1
		dir="$tmp/cluster-$i"
		mkdir -p "$dir"
		redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --save "" --appendonly no \
			--protected-mode yes --daemonize no --logfile "$dir/redis.log" \
			--cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 5000 &
		pid=$!
		cluster_pids+=("$pid")
		for _ in $(seq 50); do
			[[ $(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null) == PONG ]] && break
			kill -0 "$pid" 2>/dev/null || return 1
			sleep 0.1
		done
		addrs+=("127.0.0.1:$port")
	done
	redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes >"$tmp/cluster-create.log" 2>&1 || return 1
	for a in "${addrs[@]}"; do
		for _ in $(seq 300); do
			redis-cli -h "${a%:*}" -p "${a#*:}" cluster info 2>/dev/null | grep -q '^cluster_state:ok' && break
			sleep 0.1
		done
		redis-cli -h "${a%:*}" -p "${a#*:}" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || return 1
	done
	cluster_addrs=$(
		IFS=,
		echo "${addrs[*]}"
	)
}

say "building bin/errand and the bench"
mkdir -p bin
go build -o bin/errand ./cmd/errand
go build -o "$tmp/bench" ./scripts/bench

start_redis || die "could not start redis-server (log: $tmp/redis.log)"
say "redis-server $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') on 127.0.0.1:$redis_port (pid $redis_pid), work dir $tmp"

cluster_args=()
if [[ $mode == cluster ]]; then
	start_cluster || die "could not start a 3-master Redis Cluster (logs: $tmp/cluster-*)"
	say "Redis Cluster of 3 masters on $cluster_addrs"
	cluster_args=(-cluster "$cluster_addrs" -scenarios drain)
fi

label=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- . 2>/dev/null || label="$label+uncommitted"

"$tmp/bench" -redis "127.0.0.1:$redis_port" -errand-bin bin/errand -workdir "$tmp" -label "$label" "${args[@]}" "${cluster_args[@]}"
ok=1
