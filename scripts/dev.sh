#!/usr/bin/env bash
# Brings errand's whole local stack up on this machine and keeps it running
# until Ctrl-C: Redis, Mailpit (a mail catcher with a web page), the
# third-party sandbox when the binary has one, `errand serve` and
# `errand worker`. Installs what is missing (redis-server from Debian, Mailpit
# from source) and needs Go 1.26 on PATH.
#
#   scripts/dev.sh
#   ERRAND_DEV_REDIS_PORT=6380 scripts/dev.sh   # when 6379 is taken
#   ERRAND_DEV_API_TOKEN=... scripts/dev.sh      # another API token (16+ characters)
#
# Data lives in .dev/ (Redis AOF, SQLite database, caught mail), logs in
# .dev/logs/<name>.log. Ctrl-C stops every process this script started, and
# only those.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD

MAILPIT_VERSION=v1.27.11
REDIS_PORT=${ERRAND_DEV_REDIS_PORT:-6379}
SMTP_PORT=1025
MAILPIT_UI_PORT=8025
HTTP_PORT=8080
SANDBOX_PORT=8090
# The API token of this machine's stack (PATCH /api/users/{id}, /api/jobs);
# errand wants at least 16 characters. Never use it anywhere else.
API_TOKEN=${ERRAND_DEV_API_TOKEN:-dev-api-token-0123456789}

dev=$root/.dev
logs=$dev/logs

say() { printf 'dev.sh: %s\n' "$*"; }
warn() { printf 'dev.sh: WARNING: %s\n' "$*" >&2; }
die() {
	printf 'dev.sh: %s\n' "$*" >&2
	exit 1
}

((${#API_TOKEN} >= 16)) || die "ERRAND_DEV_API_TOKEN must be at least 16 characters"
if [[ ! $REDIS_PORT =~ ^[0-9]+$ ]] || ((REDIS_PORT < 1 || REDIS_PORT > 65535)); then
	die "ERRAND_DEV_REDIS_PORT=$REDIS_PORT is not a port number"
fi

# --- processes this script started, stopped in reverse order on exit --------

names=()
pids=()
build_tmp=""
stopping=0

# alive PID: the process exists and is not a zombie waiting to be reaped.
alive() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[[ ${stat%% *} != Z ]]
}

# stop_process NAME PID SECONDS: SIGTERM, then SIGKILL if it is still
# running after SECONDS (or at once after a second Ctrl-C).
stop_process() {
	local name=$1 pid=$2 grace=$3 waited=0
	alive "$pid" || {
		wait "$pid" 2>/dev/null || true
		return
	}
	say "stopping $name (pid $pid)"
	kill -TERM "$pid" 2>/dev/null || true
	while alive "$pid"; do
		if ((waited >= grace * 10 || force_stop)); then
			warn "$name did not stop within ${grace}s; killing it"
			kill -KILL "$pid" 2>/dev/null || true
			break
		fi
		sleep 0.1
		waited=$((waited + 1))
	done
	wait "$pid" 2>/dev/null || true
}

force_stop=0
cleanup() {
	local status=$?
	((stopping)) && return
	stopping=1
	# Stopping must reach the end even if output fails, e.g. when the
	# terminal's Ctrl-C also ended the `tee` this script was piped into:
	# with SIGPIPE ignored a write fails instead of killing the script.
	set +e
	trap '' PIPE
	# A second Ctrl-C while stopping kills what is left at once.
	trap 'force_stop=1' INT TERM HUP
	local i grace
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		grace=10
		# The worker finishes running jobs first (worker.shutdown_timeout).
		[[ ${names[i]} == worker ]] && grace=45
		stop_process "${names[i]}" "${pids[i]}" "$grace"
	done
	[[ -n $build_tmp ]] && rm -rf "$build_tmp"
	((${#pids[@]})) && say "stopped"
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# start NAME COMMAND...: runs COMMAND in the background with its output in
# .dev/logs/NAME.log. setsid gives it its own session, so the terminal's
# Ctrl-C reaches only this script, which then stops everything in order
# (a worker that saw Ctrl-C and then our SIGTERM would take it as a second
# signal and abandon its running jobs).
start() {
	local name=$1
	shift
	: >"$logs/$name.log"
	setsid "$@" >>"$logs/$name.log" 2>&1 </dev/null &
	names+=("$name")
	pids+=("$!")
}

# log_tail NAME prints the end of a process's log.
log_tail() {
	printf -- '--- last lines of .dev/logs/%s.log ---\n' "$1" >&2
	tail -n 30 "$logs/$1.log" >&2 || true
	printf -- '---\n' >&2
}

# wait_until NAME PID SECONDS COMMAND...: polls COMMAND until it succeeds;
# fails with the process's log if the process dies or time runs out.
wait_until() {
	local name=$1 pid=$2 limit=$3 tries=0
	shift 3
	until "$@" >/dev/null 2>&1; do
		if ! alive "$pid"; then
			log_tail "$name"
			die "$name exited while starting; see .dev/logs/$name.log"
		fi
		if ((tries >= limit * 5)); then
			log_tail "$name"
			die "$name did not come up within ${limit}s; see .dev/logs/$name.log"
		fi
		sleep 0.2
		tries=$((tries + 1))
	done
}

port_in_use() {
	timeout 2 bash -c ": <>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

redis_ping() {
	timeout 2 bash -c '
		exec 3<>/dev/tcp/127.0.0.1/'"$1"'
		printf "PING\r\n" >&3
		IFS= read -r reply <&3
		[[ $reply == +PONG* ]]
	' 2>/dev/null
}

http_ok() {
	curl -fsS -o /dev/null --max-time 2 "$1"
}

# --- installing what is missing ----------------------------------------------

SUDO=()
if [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null 2>&1; then
	SUDO=(sudo)
fi

apt_updated=0
apt_install() {
	command -v apt-get >/dev/null 2>&1 ||
		die "apt-get not found; install $* by hand (this script expects Debian)"
	if [[ $(id -u) -ne 0 && ${#SUDO[@]} -eq 0 ]]; then
		die "need root or sudo to install $*"
	fi
	if ((!apt_updated)); then
		"${SUDO[@]}" apt-get update
		apt_updated=1
	fi
	"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
}

command -v go >/dev/null 2>&1 || die "go not found on PATH; install Go 1.26 (https://go.dev/dl/)"
mkdir -p "$logs" "$dev/redis" "$root/bin"

gobin=$(go env GOBIN)
if [[ -z $gobin ]]; then
	gopath=$(go env GOPATH)
	gobin=${gopath%%:*}/bin
fi

redis_installed_now=0
if ! command -v redis-server >/dev/null 2>&1; then
	say "installing redis-server"
	apt_install redis-server
	redis_installed_now=1
fi
if ! command -v curl >/dev/null 2>&1; then
	say "installing curl"
	apt_install curl ca-certificates
fi

# install_mailpit builds Mailpit from its Go module with its web UI. A plain
# `go install` of Mailpit leaves the UI out (its JavaScript is built with npm
# and not kept in the module), so the page at :8025 would stay blank.
install_mailpit() {
	local dest=$gobin/mailpit log=$logs/mailpit-build.log src
	say "building Mailpit $MAILPIT_VERSION with its web UI into $dest (once; log: .dev/logs/mailpit-build.log)"
	: >"$log"
	if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
		apt_install nodejs npm || true
	fi
	if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
		src=$(cd / && go mod download -json "github.com/axllent/mailpit@$MAILPIT_VERSION" |
			sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
		[[ -n $src ]] || die "could not download the Mailpit module; see go's output above"
		build_tmp=$(mktemp -d)
		cp -R "$src/." "$build_tmp/"
		chmod -R u+w "$build_tmp"
		if (
			cd "$build_tmp" &&
				npm ci --no-audit --no-fund --loglevel=error &&
				npm run package &&
				CGO_ENABLED=0 go build -trimpath \
					-ldflags "-s -w -X github.com/axllent/mailpit/config.Version=$MAILPIT_VERSION" \
					-o "$dest" .
		) >>"$log" 2>&1; then
			rm -rf "$build_tmp"
			build_tmp=""
			return
		fi
		rm -rf "$build_tmp"
		build_tmp=""
		tail -n 20 "$log" >&2 || true
		warn "building Mailpit with its web UI failed (.dev/logs/mailpit-build.log)"
	else
		warn "Node.js and npm are needed to build Mailpit's web UI and could not be installed"
	fi
	warn "falling back to 'go install': mail is still caught (API at :$MAILPIT_UI_PORT/api/v1/messages) but the web page stays blank"
	(cd / && go install "github.com/axllent/mailpit@$MAILPIT_VERSION") >>"$log" 2>&1 ||
		die "go install github.com/axllent/mailpit@$MAILPIT_VERSION failed; see .dev/logs/mailpit-build.log"
}

mailpit=$(command -v mailpit || true)
if [[ -z $mailpit && -x $gobin/mailpit ]]; then
	mailpit=$gobin/mailpit
fi
if [[ -z $mailpit ]]; then
	install_mailpit
	mailpit=$gobin/mailpit
fi

# --- building errand ---------------------------------------------------------

say "building ./cmd/errand into bin/errand"
go build -o bin/errand ./cmd/errand || die "go build ./cmd/errand failed"

has_sandbox=0
if bin/errand sandbox --help >/dev/null 2>&1; then
	has_sandbox=1
fi

# --- nothing may be listening where the stack will ---------------------------

busy=0
check_port() {
	local port=$1 what=$2 hint=$3
	if port_in_use "$port"; then
		printf 'dev.sh: port %s (%s) is already in use on this machine.\n' "$port" "$what" >&2
		[[ -n $hint ]] && printf '        %s\n' "$hint" >&2
		busy=1
	fi
}
redis_hint="Stop the Redis listening there, or pick another port: ERRAND_DEV_REDIS_PORT=6380 scripts/dev.sh"
if ((redis_installed_now)); then
	redis_hint="Installing redis-server started Debian's own Redis service there; stop it (sudo systemctl disable --now redis-server) or pick another port: ERRAND_DEV_REDIS_PORT=6380 scripts/dev.sh"
fi
check_port "$REDIS_PORT" "Redis" "$redis_hint"
check_port "$SMTP_PORT" "Mailpit SMTP" "Is another Mailpit, or scripts/dev.sh, already running?"
check_port "$MAILPIT_UI_PORT" "Mailpit web UI" "Is another Mailpit, or scripts/dev.sh, already running?"
check_port "$HTTP_PORT" "errand serve" "Is another errand serve, or scripts/dev.sh, already running?"
if ((has_sandbox)); then
	check_port "$SANDBOX_PORT" "errand sandbox" "Is another errand sandbox, or scripts/dev.sh, already running?"
fi
if ((busy)); then
	printf '%s\n' "dev.sh: see what holds a port with: ss -ltnp 'sport = :PORT'" >&2
	exit 1
fi

# --- starting the stack ------------------------------------------------------

say "starting redis-server on 127.0.0.1:$REDIS_PORT (data in .dev/redis)"
start redis redis-server \
	--port "$REDIS_PORT" --bind 127.0.0.1 --dir "$dev/redis" \
	--appendonly yes --appendfsync everysec --save "" --daemonize no
wait_until redis "${pids[-1]}" 20 redis_ping "$REDIS_PORT"

say "starting Mailpit (SMTP 127.0.0.1:$SMTP_PORT, web 127.0.0.1:$MAILPIT_UI_PORT)"
start mailpit "$mailpit" \
	--smtp "127.0.0.1:$SMTP_PORT" --listen "127.0.0.1:$MAILPIT_UI_PORT" \
	--database "$dev/mailpit.db" \
	--smtp-auth-accept-any --smtp-auth-allow-insecure --smtp-disable-rdns \
	--enable-chaos --disable-version-check
wait_until mailpit "${pids[-1]}" 20 http_ok "http://127.0.0.1:$MAILPIT_UI_PORT/api/v1/info"
if ! http_ok "http://127.0.0.1:$MAILPIT_UI_PORT/dist/app.js"; then
	warn "$mailpit has no web UI (it was built with a plain 'go install'); mail is caught but the page stays blank."
	warn "delete $mailpit and run scripts/dev.sh again to build one with its UI."
fi

errand_env=(
	"ERRAND_REDIS__ADDR=127.0.0.1:$REDIS_PORT"
	"ERRAND_SMTP__HOST=127.0.0.1"
	"ERRAND_SMTP__PORT=$SMTP_PORT"
	"ERRAND_SMTP__TLS=none"
	"ERRAND_DATABASE__URL=file:.dev/errand.db"
	"ERRAND_API__TOKENS=$API_TOKEN"
	# Final failures are emailed here, so the escalation shows up in the mail catcher too.
	"ERRAND_ESCALATION__TO=${ERRAND_ESCALATION__TO:-developers@errand.local}"
	# A short digest window, so the walk in README does not wait a minute for the email.
	"ERRAND_ESCALATION__WINDOW=${ERRAND_ESCALATION__WINDOW:-10s}"
	# Callbacks are signed with this secret; a receiver on this machine checks
	# X-Errand-Signature with it. Loopback receivers are allowed here only.
	"ERRAND_API__CALLBACK_SECRET=${ERRAND_API__CALLBACK_SECRET:-dev-callback-signing-secret}"
	"ERRAND_API__ALLOW_PRIVATE_CALLBACKS=true"
)
if ((has_sandbox)); then
	sandbox_url=http://127.0.0.1:$SANDBOX_PORT
	# Every service points at the sandbox, with made-up credentials that the
	# sandbox checks just as the real services check real ones.
	errand_env+=(
		"ERRAND_NOTIFY__BASE_URL=$sandbox_url"
		"ERRAND_NOTIFY__DEFAULT_REP=alice"
		"ERRAND_NOTIFY__REPS__ALICE__NAME=Alice"
		"ERRAND_NOTIFY__REPS__ALICE__SLACK_WEBHOOK_URL=https://hooks.slack.com/services/T0DEV/B0DEV/alice"
		"ERRAND_NOTIFY__REPS__ALICE__TELEGRAM_CHAT_ID=1001"
		"ERRAND_NOTIFY__TELEGRAM_BOT_TOKEN=123456:dev-bot-token"
		"ERRAND_CRM__BASE_URL=$sandbox_url"
		"ERRAND_CRM__CLIENT_ID=dev-tidio-client-id"
		"ERRAND_CRM__CLIENT_SECRET=dev-tidio-client-secret"
		"ERRAND_FULFILLMENT__BASE_URL=$sandbox_url"
		"ERRAND_FULFILLMENT__APP_KEY=dev-app-key"
		"ERRAND_FULFILLMENT__APP_SECRET=dev-app-secret"
		"ERRAND_FULFILLMENT__CALLBACK_SECRET=dev-callback-secret"
		"ERRAND_SHOPIFY__BASE_URL=$sandbox_url"
		"ERRAND_SHOPIFY__SHOP=dev-shop.myshopify.com"
		"ERRAND_SHOPIFY__ACCESS_TOKEN=shpat_dev_token"
		"ERRAND_SHOPIFY__WEBHOOK_SECRET=dev-shopify-webhook-secret"
	)
	say "starting errand sandbox on $sandbox_url"
	start sandbox env "${errand_env[@]}" bin/errand sandbox
	wait_until sandbox "${pids[-1]}" 30 port_in_use "$SANDBOX_PORT"
fi

# The same settings for commands run by hand in another terminal:
#   set -a; . .dev/errand.env; set +a; bin/errand sandbox send-order
printf '%s\n' "${errand_env[@]}" >"$dev/errand.env"

say "migrating the database (.dev/errand.db)"
if ! env "${errand_env[@]}" bin/errand migrate >"$logs/migrate.log" 2>&1; then
	log_tail migrate
	die "errand migrate failed; see .dev/logs/migrate.log"
fi

say "starting errand serve on :$HTTP_PORT"
start serve env "${errand_env[@]}" bin/errand serve
wait_until serve "${pids[-1]}" 60 http_ok "http://127.0.0.1:$HTTP_PORT/healthz"

say "starting errand worker"
start worker env "${errand_env[@]}" bin/errand worker
sleep 1
alive "${pids[-1]}" || {
	log_tail worker
	die "errand worker exited while starting; see .dev/logs/worker.log"
}

cat <<EOF

errand is up. Press Ctrl-C to stop everything this script started.

  API            http://localhost:$HTTP_PORT/api/users
  Dashboard      http://localhost:$HTTP_PORT/monitoring/
  Mail catcher   http://localhost:$MAILPIT_UI_PORT
  Metrics        http://localhost:$HTTP_PORT/metrics
EOF
if ((has_sandbox)); then
	echo "  Sandbox        $sandbox_url/_sandbox/   (every call to Slack/Telegram, Tidio, fulfillment, Shopify)"
fi
cat <<EOF
  API token      $API_TOKEN   (Authorization: Bearer; in .dev/errand.env as ERRAND_API__TOKENS)
  Redis          127.0.0.1:$REDIS_PORT
  Logs           .dev/logs/{$(
	IFS=,
	echo "${names[*]}"
)}.log

Register a user; the welcome email shows up in the mail catcher about 5 s later:

  curl -sS -X POST localhost:$HTTP_PORT/api/users -H 'Content-Type: application/json' -d '{"email":"ada@example.com","first_name":"Ada","last_name":"Lovelace","password":"correct horse battery"}'

Change that user's name as the shop's backend does, with the API token (1 is the id the registration
answered); the change goes to the CRM:

  curl -sS -X PATCH localhost:$HTTP_PORT/api/users/1 -H 'Authorization: Bearer $API_TOKEN' -H 'Content-Type: application/json' -d '{"last_name":"King"}'

Queue a job from any language, and read its status with the same token:

  curl -sS -X POST localhost:$HTTP_PORT/api/jobs -H 'Authorization: Bearer $API_TOKEN' -H 'Content-Type: application/json' -d '{"type":"ops:noop","payload":{}}'
  curl -sS localhost:$HTTP_PORT/api/jobs/<id> -H 'Authorization: Bearer $API_TOKEN'

In another terminal, load the same settings for bin/errand commands:

  set -a; . .dev/errand.env; set +a

Break SMTP (every send answered "451"), register again, and watch 3 attempts in .dev/logs/worker.log;
mend it and the escalation email to developers@errand.local arrives in the mail catcher:

  curl -sS -X PUT localhost:$MAILPIT_UI_PORT/api/v1/chaos -H 'Content-Type: application/json' -d '{"Sender":{"ErrorCode":451,"Probability":100}}'
  curl -sS -X PUT localhost:$MAILPIT_UI_PORT/api/v1/chaos -H 'Content-Type: application/json' -d '{}'

Everything lives on in .dev/ (Redis, the database, caught mail) when this script stops, so
registering ada again answers 409. To start over: stop this script, then rm -rf .dev

EOF

# Run until Ctrl-C, or until one of the processes dies on its own.
while true; do
	wait -n "${pids[@]}" || true
	for i in "${!pids[@]}"; do
		if ! alive "${pids[i]}"; then
			log_tail "${names[i]}"
			die "${names[i]} exited unexpectedly; see .dev/logs/${names[i]}.log. Stopping the rest."
		fi
	done
done
