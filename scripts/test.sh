#!/usr/bin/env bash
# Runs every check errand's CI runs: gofmt, go vet, staticcheck and the whole
# test suite with the race detector. Installs what the tests need and is
# missing: redis-server, postgresql, chromium, php-cli and php-curl, supervisor,
# prometheus (promtool) and systemd (systemd-analyze) (Debian packages), a C
# compiler for -race, and staticcheck. Works from any directory; needs Go 1.26 on PATH.
#
#   scripts/test.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

STATICCHECK_VERSION=0.8.2

section() { printf '\n==> %s\n' "$*"; }
die() {
	printf 'test.sh: %s\n' "$*" >&2
	exit 1
}

# Use sudo only where it is needed and available.
SUDO=()
if [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null 2>&1; then
	SUDO=(sudo)
fi

apt_updated=0
# apt_install PACKAGE... installs Debian packages, running apt-get update once.
apt_install() {
	command -v apt-get >/dev/null 2>&1 ||
		die "apt-get not found; install $* by hand (this script expects Debian)"
	if [[ $(id -u) -ne 0 && ${#SUDO[@]} -eq 0 ]]; then
		die "need root or sudo to install $*"
	fi
	if [[ $apt_updated -eq 0 ]]; then
		"${SUDO[@]}" apt-get update
		apt_updated=1
	fi
	"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
}

section "Checking tools"
command -v go >/dev/null 2>&1 || die "go not found on PATH; install Go 1.26 (https://go.dev/dl/)"
go version

# redis-cli (redis-tools) joins the Redis Cluster of the cluster tests.
if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
	echo "redis-server or redis-cli is missing; installing them"
	apt_install redis-server redis-tools
fi
redis-server --version

if ! command -v chromium >/dev/null 2>&1; then
	echo "chromium is missing; installing it (used by the dashboard rendering test)"
	apt_install chromium
fi
chromium --version 2>/dev/null || echo "chromium: $(command -v chromium)"

if ! command -v php >/dev/null 2>&1; then
	echo "php is missing; installing php-cli (README's PHP callback receiver is run by a test)"
	apt_install php-cli
fi
php --version | head -n 1

# deploy/ and clients/php are run by tests too: supervisord runs the shipped
# supervisor config, promtool checks the alerts, systemd-analyze verifies the
# units, and the PHP client needs ext-curl.
if ! php -r 'exit(extension_loaded("curl") ? 0 : 1);'; then
	echo "php's curl extension is missing; installing php-curl (clients/php is tested)"
	apt_install php-curl
fi
if ! command -v supervisord >/dev/null 2>&1 || ! command -v supervisorctl >/dev/null 2>&1; then
	echo "supervisord is missing; installing supervisor (deploy/supervisor is tested)"
	apt_install supervisor
fi
if ! command -v promtool >/dev/null 2>&1; then
	echo "promtool is missing; installing prometheus (deploy/prometheus is tested)"
	apt_install prometheus
fi
if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "systemd-analyze is missing; installing systemd (deploy/systemd is verified)"
	apt_install systemd
fi

# The store, relay and scale-out tests start a real PostgreSQL 15 of their own
# (internal/store/pgtest): initdb and postgres from the Debian package, run as
# the postgres user when this script runs as root.
if [[ ! -x /usr/lib/postgresql/15/bin/initdb ]] && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
	echo "PostgreSQL is missing; installing postgresql (the store tests run against it too)"
	apt_install postgresql
fi
ls -d /usr/lib/postgresql/*/bin | head -n 1

# The race detector needs cgo, and cgo a C compiler.
export CGO_ENABLED=1
cc=$(go env CC)
if ! command -v "${cc%% *}" >/dev/null 2>&1; then
	echo "C compiler '$cc' is missing (go test -race needs one); installing gcc"
	apt_install gcc libc6-dev
fi

gobin=$(go env GOBIN)
if [[ -z $gobin ]]; then
	gopath=$(go env GOPATH)
	gobin=${gopath%%:*}/bin
fi
staticcheck=$gobin/staticcheck
if [[ ! -x $staticcheck || $("$staticcheck" -version 2>/dev/null) != *"($STATICCHECK_VERSION)"* ]]; then
	echo "installing staticcheck v$STATICCHECK_VERSION into $gobin"
	# Outside the module, so the install neither reads nor touches go.mod.
	(cd / && go install "honnef.co/go/tools/cmd/staticcheck@v$STATICCHECK_VERSION")
fi
"$staticcheck" -version

section "gofmt"
unformatted=$(gofmt -l .)
if [[ -n $unformatted ]]; then
	echo "These files are not gofmt-formatted (run: gofmt -w .):" >&2
	echo "$unformatted" >&2
	exit 1
fi
echo "ok"

section "go vet"
go vet ./...
echo "ok"

section "staticcheck"
"$staticcheck" ./...
echo "ok"

section "go test -race"
# -parallel 6: most of cmd/errand's tests wait on real time (delays, leases,
# failovers) rather than the CPU, so more of them at once than the default
# (one per CPU) finishes sooner without starving any.
go test -race -count=1 -parallel 6 -timeout 20m ./...

section "fuzz (a short run of each target; seeds in testdata/fuzz)"
# The budget is a count of inputs, not a duration: Go 1.26's fuzz coordinator
# can report a spurious "context deadline exceeded" when a duration budget
# ends while a worker is mid-input on a loaded machine (go.dev/issue/75804,
# fixed in Go 1.27). A count has no deadline to race.
# FUZZTIME=500000x scripts/test.sh fuzzes longer.
# Every package's targets: -fuzz takes one target in one package at a time.
while IFS= read -r file; do
	dir=$(dirname "$file")
	for target in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$file" | sed 's/^func //'); do
		echo "$target ($dir)"
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "${FUZZTIME:-20000x}" "./$dir"
	done
done < <(grep -rl --include='*_test.go' '^func Fuzz' . | sed 's|^\./||' | sort)

section "All checks passed"
