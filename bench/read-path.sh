#!/usr/bin/env bash
# Compares the registry's read path with nginx serving the same response bytes as static
# files, on loopback, and records the results in BENCHMARKS.md.
#
#   bench/read-path.sh              full run (about 25 minutes on 2 cores)
#   QUICK=1 bench/read-path.sh      smoke test of every step (about 4 minutes)
#
# Steps:
#   1. Install nginx and wrk if missing, and build the release binary.
#   2. Serve the starter catalog and copy three responses into an nginx root: a pinned KPI,
#      the same KPI unpinned, and index.json. Check that both servers return identical bytes.
#   3. Load both servers with wrk in alternating rounds.
#   4. Repeat the pinned KPI and index.json with a synthetic catalog, time its starts and
#      read the registry's resident memory.
#   5. Time `reindex` of a long synthetic history on SQLite and on PostgreSQL.
#   6. Print a table and rewrite this script's section of BENCHMARKS.md.
#
# Settings, from the environment (default in brackets):
#   ROUNDS [5]            measured wrk rounds per server and case; a recorded run needs 3 or more
#   ROUND_SECONDS [10]    length of one wrk round, in seconds
#   WARMUP_SECONDS [5]    unmeasured wrk run per server and case before the rounds, in seconds
#   CONNECTIONS [64]      wrk connections (-c)
#   THREADS [2]           wrk threads (-t)
#   SCALE_KPIS [10000]    KPIs of the synthetic catalog
#   SCALE_DOMAINS [20]    domains of the synthetic catalog
#   HISTORY_VERSIONS [10] versions per KPI of the synthetic history that `reindex` rebuilds
#   START_RUNS [5]        starts timed on the initialised synthetic registry
#   REINDEX_TIMEOUT [600] seconds after which a reindex run is stopped and recorded as
#                         unfinished
#   SKIP_BUILD [0]        1: use the binary already built, without running cargo
#   REGISTRY_BIN []       binary to measure; setting it implies SKIP_BUILD=1
#   SKIP_SCALE [0]        1: starter catalog cases only (no synthetic catalog, start, RSS or reindex)
#   SKIP_POSTGRES [0]     1: reindex on SQLite only
#   PG_ADMIN_URL [postgres://postgres@127.0.0.1:5432/test]
#                         PostgreSQL URL ending in /DATABASE, used to create and drop a
#                         database for the reindex run
#   QUICK [0]             1: ROUNDS=2, ROUND_SECONDS=3, WARMUP_SECONDS=1, 1000 KPIs in 10
#                         domains, 3 versions, 3 starts; writes no results file unless
#                         RESULTS_FILE is set. Explicit settings above still win.
#   RESULTS_FILE [BENCHMARKS.md at the repository root; none with QUICK=1]
#                         Markdown file whose read-path section is rewritten; other sections stay
#   RUN_NOTE []           sentence added to the recorded notes, such as what else ran
#   KEEP_WORKDIR [0]      1: keep the temporary directory with logs and wrk outputs
#
# Everything listens on 127.0.0.1 on free ports. nginx runs in the foreground from a
# configuration written into the temporary directory; the system's nginx configuration and
# port 80 are not used. NOTE: on a host whose init starts services on installation,
# installing Debian's nginx package starts its default site on port 80; this script does not
# use or stop that service.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HELPER="$ROOT/bench/read_path.py"

QUICK="${QUICK:-0}"
if [ "$QUICK" = 1 ]; then
    default_rounds=2 default_seconds=3 default_warmup=1 default_kpis=1000 default_domains=10 default_versions=3 default_starts=3
else
    default_rounds=5 default_seconds=10 default_warmup=5 default_kpis=10000 default_domains=20 default_versions=10 default_starts=5
fi
ROUNDS="${ROUNDS:-$default_rounds}"
ROUND_SECONDS="${ROUND_SECONDS:-$default_seconds}"
WARMUP_SECONDS="${WARMUP_SECONDS:-$default_warmup}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-2}"
SCALE_KPIS="${SCALE_KPIS:-$default_kpis}"
SCALE_DOMAINS="${SCALE_DOMAINS:-$default_domains}"
HISTORY_VERSIONS="${HISTORY_VERSIONS:-$default_versions}"
START_RUNS="${START_RUNS:-$default_starts}"
REINDEX_TIMEOUT="${REINDEX_TIMEOUT:-600}"
SKIP_BUILD="${SKIP_BUILD:-0}"
REGISTRY_BIN="${REGISTRY_BIN:-}"
SKIP_SCALE="${SKIP_SCALE:-0}"
SKIP_POSTGRES="${SKIP_POSTGRES:-0}"
PG_ADMIN_URL="${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/test}"
RUN_NOTE="${RUN_NOTE:-}"
KEEP_WORKDIR="${KEEP_WORKDIR:-0}"
if [ -z "${RESULTS_FILE+set}" ]; then
    if [ "$QUICK" = 1 ]; then RESULTS_FILE=""; else RESULTS_FILE="$ROOT/BENCHMARKS.md"; fi
fi

for name in ROUNDS ROUND_SECONDS WARMUP_SECONDS CONNECTIONS THREADS SCALE_KPIS SCALE_DOMAINS HISTORY_VERSIONS START_RUNS \
    REINDEX_TIMEOUT; do
    if ! [[ "${!name}" =~ ^[1-9][0-9]*$ ]]; then
        echo "error: $name must be a positive integer, got '${!name}'" >&2
        exit 2
    fi
done
if [ "$QUICK" != 1 ] && [ "$ROUNDS" -lt 3 ]; then
    echo "warning: ROUNDS=$ROUNDS; a recorded run needs at least 3 rounds per server and case" >&2
fi

# Registry settings from the caller's environment (DATABASE_URL, REGISTRY_*) would change
# what is measured; every run below passes its settings explicitly. REGISTRY_BIN is this
# script's own setting and stays, but the registry does not inherit it.
unset DATABASE_URL
while read -r name; do
    if [ "$name" != REGISTRY_BIN ]; then unset "$name"; fi
done < <(compgen -e | grep '^REGISTRY_' || true)
export -n REGISTRY_BIN

step() { printf '\n== %s\n' "$*"; }
info() { printf '   %s\n' "$*"; }
fail() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# --- cleanup ---------------------------------------------------------------------------

WORK=""
CHILD_PIDS=()
NGINX_PID=""
PG_DATABASE=""

# Whether PID runs; a child that exited but was not waited for yet (a zombie) does not.
is_running() {
    local state
    state="$(ps -o stat= -p "$1" 2>/dev/null)" || return 1
    [[ "$state" != Z* ]]
}

stop_pid() {
    local pid="$1"
    is_running "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        is_running "$pid" || break
        sleep 0.1
    done
    if is_running "$pid"; then
        echo "warning: process $pid did not stop within 10 s of SIGTERM; sending SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    # Reaping our own child here keeps its pid from being reused while it is still listed.
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    set +e
    for pid in "${CHILD_PIDS[@]}"; do stop_pid "$pid"; done
    if [ -n "$NGINX_PID" ]; then stop_pid "$NGINX_PID"; fi
    if [ -n "$PG_DATABASE" ]; then
        psql -q "$PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS \"$PG_DATABASE\" WITH (FORCE)" >/dev/null 2>&1 ||
            echo "warning: failed to drop the PostgreSQL database $PG_DATABASE; drop it by hand" >&2
    fi
    if [ -n "$WORK" ] && [ -d "$WORK" ]; then
        if [ "$KEEP_WORKDIR" = 1 ] || [ "$status" -ne 0 ]; then
            echo "logs and wrk outputs kept in $WORK" >&2
        else
            rm -rf "$WORK"
        fi
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

WORK="$(mktemp -d "${TMPDIR:-/tmp}/read-path.XXXXXX")"
# nginx workers started by root run as the user nobody, who must be able to read the files.
chmod 755 "$WORK"
mkdir -p "$WORK/logs" "$WORK/wrk" "$WORK/www"
FACTS="$WORK/facts"
RESULTS="$WORK/results.tsv"
: >"$FACTS"
: >"$RESULTS"
fact() { printf '%s=%s\n' "$1" "$2" >>"$FACTS"; }

# --- tools -----------------------------------------------------------------------------

step "tools"
if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi
missing=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || missing+=(curl)
command -v python3 >/dev/null || missing+=(python3)
command -v sha256sum >/dev/null || missing+=(coreutils)
if [ "$SKIP_SCALE" != 1 ] && [ "$SKIP_POSTGRES" != 1 ]; then
    command -v psql >/dev/null || missing+=(postgresql-client)
fi
if [ "${#missing[@]}" -gt 0 ]; then
    info "installing from Debian's packages: ${missing[*]}"
    "${SUDO[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
info "nginx: $("$NGINX" -v 2>&1)"
info "wrk: $(wrk -v 2>&1 | head -n 1)"

# --- binary ----------------------------------------------------------------------------

step "registry binary"
if [ -n "$REGISTRY_BIN" ]; then
    SKIP_BUILD=1
else
    target_dir="$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
    REGISTRY_BIN="$target_dir/release/ontology-registry"
fi
if [ "$SKIP_BUILD" != 1 ]; then
    info "cargo build --release -p ontology-registry"
    (cd "$ROOT" && cargo build --release -p ontology-registry)
fi
[ -x "$REGISTRY_BIN" ] || fail "no registry binary at $REGISTRY_BIN; build it or set REGISTRY_BIN"
# A copy keeps one binary for the whole run even if someone rebuilds the target directory.
cp "$REGISTRY_BIN" "$WORK/ontology-registry"
BIN="$WORK/ontology-registry"
binary_built="$(date -u -r "$REGISTRY_BIN" '+%Y-%m-%d %H:%M UTC')"
info "$REGISTRY_BIN (built $binary_built)"

# --- facts about the run ---------------------------------------------------------------

command_line="ROUNDS=$ROUNDS ROUND_SECONDS=$ROUND_SECONDS WARMUP_SECONDS=$WARMUP_SECONDS"
command_line+=" CONNECTIONS=$CONNECTIONS THREADS=$THREADS"
if [ "$SKIP_SCALE" = 1 ]; then
    command_line+=" SKIP_SCALE=1"
else
    command_line+=" SCALE_KPIS=$SCALE_KPIS SCALE_DOMAINS=$SCALE_DOMAINS HISTORY_VERSIONS=$HISTORY_VERSIONS"
    command_line+=" START_RUNS=$START_RUNS REINDEX_TIMEOUT=$REINDEX_TIMEOUT"
    if [ "$SKIP_POSTGRES" = 1 ]; then command_line+=" SKIP_POSTGRES=1"; fi
fi
if [ "$QUICK" = 1 ]; then command_line="QUICK=1 $command_line"; fi
command_line+=" bench/read-path.sh"

fact run.date "$(date -u '+%Y-%m-%d %H:%M')"
fact run.command "$command_line"
fact run.quick "$QUICK"
fact run.note "$RUN_NOTE"
fact run.loadavg "$(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min)"
fact git.commit "$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]; then fact git.dirty 1; fi
fact binary.built "$binary_built"
if [ "$SKIP_BUILD" = 1 ]; then fact binary.prebuilt 1; fi
fact machine.cpu "$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
fact machine.cores "$(nproc)"
fact machine.ram "$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
fact machine.kernel "$(uname -r)"
fact version.nginx "$("$NGINX" -v 2>&1 | sed 's|^nginx version: ||')"
fact version.wrk "$(wrk -v 2>&1 | head -n 1 | awk '{print $1, $2}')"
fact wrk.threads "$THREADS"
fact wrk.connections "$CONNECTIONS"
fact wrk.seconds "$ROUND_SECONDS"
fact wrk.rounds "$ROUNDS"
fact wrk.warmup "$WARMUP_SECONDS"

# Prints the names of compiler processes running now, or nothing. Other builds on the
# machine distort the numbers, so the report marks the rounds they overlapped.
compilers_running() {
    pgrep -l -x 'rustc|cc1|cc1plus|ld|ld.lld|mold|cargo' 2>/dev/null | awk '{print $2}' | sort -u | paste -sd, - || true
}

# --- servers ---------------------------------------------------------------------------

free_port() { python3 "$HELPER" free-port; }

# Waits until URL responds with 200, or fails when PID exits or TIMEOUT seconds pass.
wait_ready() {
    local url="$1" pid="$2" timeout="$3" log="$4"
    local deadline=$((SECONDS + timeout))
    until curl -fsS -o /dev/null "$url" 2>/dev/null; do
        kill -0 "$pid" 2>/dev/null || fail "the server exited before responding to $url; log: $log"$'\n'"$(tail -n 20 "$log")"
        [ "$SECONDS" -lt "$deadline" ] || fail "no response from $url within $timeout s; log: $log"
        sleep 0.1
    done
}

# Starts the registry in the background; sets REGISTRY_URL and REGISTRY_PID.
start_registry() {
    local name="$1" data_dir="$2" catalog="$3"
    local port log="$WORK/logs/registry-$name.log"
    port="$(free_port)"
    RUST_LOG=warn "$BIN" --data-dir "$data_dir" --catalog "$catalog" serve --bind "127.0.0.1:$port" \
        </dev/null >>"$log" 2>&1 &
    REGISTRY_PID=$!
    CHILD_PIDS+=("$REGISTRY_PID")
    REGISTRY_URL="http://127.0.0.1:$port"
    # A first start of a large catalog builds the git repository and the index first.
    wait_ready "$REGISTRY_URL/healthz" "$REGISTRY_PID" 600 "$log"
    info "registry ($name) pid $REGISTRY_PID on $REGISTRY_URL"
}

stop_registry() {
    stop_pid "$REGISTRY_PID"
    forget_pid "$REGISTRY_PID"
}

forget_pid() {
    local kept=() pid
    for pid in "${CHILD_PIDS[@]}"; do
        if [ "$pid" != "$1" ]; then kept+=("$pid"); fi
    done
    CHILD_PIDS=("${kept[@]}")
}

# Runs a long command as a tracked child, so that the cleanup stops it when the script is
# interrupted or terminated while waiting for it. Returns the command's exit status.
run_tracked() {
    local pid status=0
    "$@" &
    pid=$!
    CHILD_PIDS+=("$pid")
    wait "$pid" || status=$?
    forget_pid "$pid"
    return "$status"
}

start_nginx() {
    local dir="$WORK/nginx" port
    mkdir -p "$dir/tmp"
    port="$(free_port)"
    cat >"$dir/nginx.conf" <<EOF
# Written by bench/read-path.sh for one run; serves $WORK/www on loopback.
daemon off;
worker_processes auto;
pid $dir/nginx.pid;
error_log $dir/error.log warn;

events {
    worker_connections 1024;
}

http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65s;
    # The registry serves any number of requests on a kept-alive connection. nginx closes
    # one after 1000 by default, so wrk would reconnect every second or so.
    keepalive_requests 1000000;
    types {
        application/json json;
    }
    default_type application/octet-stream;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;

    server {
        listen 127.0.0.1:$port;
        root $WORK/www;
    }
}
EOF
    "$NGINX" -t -q -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" ||
        fail "nginx rejected $dir/nginx.conf"
    "$NGINX" -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" </dev/null >>"$WORK/logs/nginx.log" 2>&1 &
    NGINX_PID=$!
    NGINX_URL="http://127.0.0.1:$port"
    printf 'ready\n' >"$WORK/www/ready.txt"
    wait_ready "$NGINX_URL/ready.txt" "$NGINX_PID" 30 "$dir/error.log"
    info "nginx pid $NGINX_PID on $NGINX_URL ($(nproc) worker processes)"
}

# --- responses -------------------------------------------------------------------------

# Fetches a registry response into the nginx root as FILE, then checks that both servers
# return 200 with identical bytes, and that the registry returns the same bytes twice.
# Records the case's label, path and size.
mirror_case() {
    local case="$1" label="$2" path="$3" file="$4"
    local registry_body="$WORK/www/$file" check="$WORK/check-$case"
    local status
    mkdir -p "$(dirname "$registry_body")"

    # curl sends no Accept-Encoding without --compressed, so both servers send the identity form.
    status="$(curl -sS -o "$registry_body" -w '%{http_code}' "$REGISTRY_URL$path")"
    [ "$status" = 200 ] || fail "registry returned $status for $path"
    chmod 644 "$registry_body"

    status="$(curl -sS -o "$check.registry" -w '%{http_code}' "$REGISTRY_URL$path")"
    [ "$status" = 200 ] || fail "registry returned $status for $path on the second request"
    status="$(curl -sS -o "$check.nginx" -w '%{http_code}' "$NGINX_URL/$file")"
    [ "$status" = 200 ] || fail "nginx returned $status for /$file"

    local first second served
    first="$(sha256sum <"$registry_body" | cut -d' ' -f1)"
    second="$(sha256sum <"$check.registry" | cut -d' ' -f1)"
    served="$(sha256sum <"$check.nginx" | cut -d' ' -f1)"
    [ "$first" = "$second" ] || fail "the registry returned different bytes for two requests of $path ($first, $second)"
    [ "$first" = "$served" ] || fail "nginx /$file and registry $path differ: sha256 $served vs $first"

    local size
    size="$(wc -c <"$registry_body")"
    info "$label: $path = /$file, $size bytes, sha256 ${first:0:16}... on both"
    fact "label.$case" "$label"
    fact "path.$case" "$path"
    fact "bytes.$case" "$size"
    printf '%s\t%s\t%s\n' "$case" "$REGISTRY_URL$path" "$NGINX_URL/$file" >>"$WORK/cases.tsv"
}

# --- load ------------------------------------------------------------------------------

# Runs wrk against URL with the server's process tree given as PID; prints the summary
# fields of read_path.py run-wrk.
run_wrk() {
    local seconds="$1" url="$2" pid="$3" output="$4"
    python3 "$HELPER" run-wrk --output "$output" --server-pid "$pid" -- \
        -t"$THREADS" -c"$CONNECTIONS" -d"${seconds}s" --latency "$url" ||
        fail "wrk failed against $url:"$'\n'"$(cat "$output")"
}

# Runs the warm-up and the alternating rounds of every case in cases.tsv, then empties it.
measure_cases() {
    local case registry_url nginx_url round server url pid output compilers summary
    local rps p50 p99 non_2xx errors cpu_us other_cpu
    while IFS=$'\t' read -r case registry_url nginx_url; do
        info "$case: warm-up, ${WARMUP_SECONDS} s per server"
        run_wrk "$WARMUP_SECONDS" "$registry_url" "$REGISTRY_PID" "$WORK/wrk/$case-warmup-registry.txt" >/dev/null
        run_wrk "$WARMUP_SECONDS" "$nginx_url" "$NGINX_PID" "$WORK/wrk/$case-warmup-nginx.txt" >/dev/null
        for round in $(seq 1 "$ROUNDS"); do
            for server in registry nginx; do
                if [ "$server" = registry ]; then
                    url="$registry_url" pid="$REGISTRY_PID"
                else
                    url="$nginx_url" pid="$NGINX_PID"
                fi
                output="$WORK/wrk/$case-$round-$server.txt"
                compilers="$(compilers_running)"
                summary="$(run_wrk "$ROUND_SECONDS" "$url" "$pid" "$output")"
                [ -n "$compilers" ] || compilers="$(compilers_running)"
                IFS=$'\t' read -r rps p50 p99 non_2xx errors cpu_us other_cpu <<<"$summary"
                [ "$non_2xx" = 0 ] || fail "$server answered $non_2xx non-2xx responses to $url; see $output"
                printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$case" "$server" "$round" \
                    "$rps" "$p50" "$p99" "$non_2xx" "$errors" "$cpu_us" "$other_cpu" "${compilers:--}" >>"$RESULTS"
                printf '   %-17s round %d/%d  %-8s %7.0f req/s  p99 %6.2f ms  %5.1f us CPU/req  others %4.1f%% CPU%s\n' \
                    "$case" "$round" "$ROUNDS" "$server" "$rps" "$(awk -v us="$p99" 'BEGIN {print us / 1000}')" \
                    "$cpu_us" "$other_cpu" "${compilers:+  (compiling: $compilers)}"
            done
        done
    done <"$WORK/cases.tsv"
    : >"$WORK/cases.tsv"
}

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
peak_rss_kib() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }

median() { sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

now_ns() { date +%s%N; }
seconds_since() { awk -v start="$1" -v end="$(now_ns)" 'BEGIN {printf "%.2f", (end - start) / 1e9}'; }

# --- 1. starter catalog ----------------------------------------------------------------

step "starter catalog: registry on SQLite, nginx with the same bytes"
: >"$WORK/cases.tsv"
start_registry starter "$WORK/starter-data" "$ROOT/ontology-repo"
start_nginx
STARTER_KPI="/api/ontology/customers/gross_revenue_retention.json"
mirror_case starter-pinned "Starter, pinned KPI" "$STARTER_KPI?version=1.0.0" starter/kpi-pinned.json
mirror_case starter-unpinned "Starter, unpinned KPI" "$STARTER_KPI" starter/kpi-unpinned.json
mirror_case starter-index "Starter, index.json" "/api/ontology/index.json" starter/index.json

step "starter catalog: wrk -t$THREADS -c$CONNECTIONS, $ROUNDS rounds of $ROUND_SECONDS s per server and case"
measure_cases
stop_registry

# --- 2. synthetic catalog: throughput, start time, memory -------------------------------

if [ "$SKIP_SCALE" != 1 ]; then
    fact scale.kpis "$SCALE_KPIS"
    fact scale.domains "$SCALE_DOMAINS"
    fact history.versions "$HISTORY_VERSIONS"

    step "synthetic catalog: $SCALE_KPIS KPIs in $SCALE_DOMAINS domains"
    started="$(now_ns)"
    "$BIN" generate --kpis "$SCALE_KPIS" --domains "$SCALE_DOMAINS" "$WORK/scale-catalog" >"$WORK/logs/generate-scale.log" 2>&1 ||
        fail "generate failed; log: $WORK/logs/generate-scale.log"
    info "generated in $(seconds_since "$started") s"

    started="$(now_ns)"
    start_registry scale-init "$WORK/scale-data" "$WORK/scale-catalog"
    info "first start (creates the repository and the index) took $(seconds_since "$started") s"
    stop_registry

    step "start time on the initialised registry, $START_RUNS starts"
    busy="$(compilers_running)"
    # The `listening on` line is logged at INFO; no request reaches these servers.
    RUST_LOG=info run_tracked python3 "$HELPER" time-starts --runs "$START_RUNS" --log-dir "$WORK/logs" -- \
        "$BIN" --data-dir "$WORK/scale-data" --catalog "$WORK/scale-catalog" serve --bind 127.0.0.1:0 \
        >"$WORK/starts.txt" || fail "timing the starts failed; logs in $WORK/logs"
    [ -n "$busy" ] || busy="$(compilers_running)"
    if [ -n "$busy" ]; then fact busy.start "$busy"; fi
    while read -r seconds rss; do info "start: $seconds s, RSS $((rss / 1024)) MiB"; done <"$WORK/starts.txt"
    fact start.runs "$START_RUNS"
    fact start.median_s "$(cut -d' ' -f1 "$WORK/starts.txt" | median)"

    step "synthetic catalog: registry on SQLite, nginx with the same bytes"
    start_registry scale "$WORK/scale-data" "$WORK/scale-catalog"
    fact rss.after_start_kib "$(rss_kib "$REGISTRY_PID")"
    curl -fsS -o "$WORK/scale-index.json" "$REGISTRY_URL/api/ontology/index.json"
    picked="$(python3 "$HELPER" pick-kpi "$WORK/scale-index.json")" || fail "no KPI to measure in the synthetic index.json"
    read -r scale_kpi scale_version <<<"$picked"
    mirror_case scale-pinned "$SCALE_KPIS KPIs, pinned KPI" "$scale_kpi?version=$scale_version" scale/kpi-pinned.json
    mirror_case scale-index "$SCALE_KPIS KPIs, index.json" "/api/ontology/index.json" scale/index.json

    step "synthetic catalog: wrk, $ROUNDS rounds of $ROUND_SECONDS s per server and case"
    measure_cases
    fact rss.after_wrk_kib "$(rss_kib "$REGISTRY_PID")"
    fact rss.peak_kib "$(peak_rss_kib "$REGISTRY_PID")"
    info "RSS after start $(($(grep '^rss.after_start_kib=' "$FACTS" | cut -d= -f2) / 1024)) MiB," \
        "after wrk $(($(rss_kib "$REGISTRY_PID") / 1024)) MiB, peak $(($(peak_rss_kib "$REGISTRY_PID") / 1024)) MiB"
    stop_registry
fi

stop_pid "$NGINX_PID"
NGINX_PID=""

# --- 3. reindex of a long history ------------------------------------------------------

# Times `reindex` of the history data directory on BACKEND (sqlite, or postgres with
# DATABASE_URL set by the caller), stopping it after REINDEX_TIMEOUT seconds.
time_reindex() {
    local backend="$1" log="$WORK/logs/reindex-$1.log" started status=0
    started="$(now_ns)"
    # timeout runs in a process group of its own, which Ctrl-C does not reach, so it is tracked.
    RUST_LOG=warn run_tracked timeout --signal=TERM --kill-after=30 "$REINDEX_TIMEOUT" \
        "$BIN" --data-dir "$WORK/history-data" reindex </dev/null >"$log" 2>&1 || status=$?
    if [ "$status" -eq 124 ]; then
        fact "reindex.${backend}_timeout" "$REINDEX_TIMEOUT"
        info "stopped after $REINDEX_TIMEOUT s (REINDEX_TIMEOUT) before it finished"
    elif [ "$status" -ne 0 ]; then
        fail "reindex on $backend failed with status $status; log: $log"$'\n'"$(tail -n 20 "$log")"
    else
        fact "reindex.${backend}_s" "$(seconds_since "$started")"
        info "$(grep '^reindexed' "$log")"
    fi
}

if [ "$SKIP_SCALE" != 1 ]; then
    step "history: $SCALE_KPIS KPIs x $HISTORY_VERSIONS versions"
    started="$(now_ns)"
    run_tracked "$BIN" --data-dir "$WORK/history-data" generate --kpis "$SCALE_KPIS" --domains "$SCALE_DOMAINS" \
        --versions "$HISTORY_VERSIONS" "$WORK/history-catalog" >"$WORK/logs/generate-history.log" 2>&1 ||
        fail "generate --versions failed; log: $WORK/logs/generate-history.log"
    info "generated in $(seconds_since "$started") s: $(grep '^committed' "$WORK/logs/generate-history.log" || true)"

    step "reindex on SQLite"
    busy="$(compilers_running)"
    time_reindex sqlite
    busy="${busy:+$busy,}$(compilers_running)"

    if [ "$SKIP_POSTGRES" = 1 ]; then
        fact reindex.postgres_skipped "SKIP_POSTGRES=1"
    else
        step "reindex on PostgreSQL"
        psql -q -X "$PG_ADMIN_URL" -c 'SELECT 1' >/dev/null 2>&1 ||
            fail "PostgreSQL is not reachable at $PG_ADMIN_URL; start it (for example pg_ctlcluster VERSION main start), set PG_ADMIN_URL, or set SKIP_POSTGRES=1"
        fact version.postgres "PostgreSQL $(psql -X -At "$PG_ADMIN_URL" -c 'SHOW server_version' | cut -d' ' -f1)"
        PG_DATABASE="read_path_bench_$$"
        psql -q -X -v ON_ERROR_STOP=1 "$PG_ADMIN_URL" -c "CREATE DATABASE \"$PG_DATABASE\"" >/dev/null
        busy="${busy:+$busy,}$(compilers_running)"
        DATABASE_URL="${PG_ADMIN_URL%/*}/$PG_DATABASE" time_reindex postgres
        busy="${busy:+$busy,}$(compilers_running)"
        psql -q -X "$PG_ADMIN_URL" -c "DROP DATABASE \"$PG_DATABASE\" WITH (FORCE)" >/dev/null
        PG_DATABASE=""
    fi
    busy="$(tr ',' '\n' <<<"$busy" | sed '/^$/d' | sort -u | paste -sd, -)"
    if [ -n "$busy" ]; then fact busy.reindex "$busy"; fi
fi

# --- report ----------------------------------------------------------------------------

step "results"
python3 "$HELPER" report --results "$RESULTS" --facts "$FACTS" ${RESULTS_FILE:+--output "$RESULTS_FILE"}
