#!/usr/bin/env bash
# Measures merge latency (create, approve, then time only the merge request) on the starter
# catalog and on a synthetic catalog with a long git history, and records the results in
# BENCHMARKS.md under "## Merge latency".
#
#   bench/merge-latency.sh             full run
#   QUICK=1 bench/merge-latency.sh     smoke test of every step; writes no results file
#
# Target: the median merge on the large catalog is at most 1.5 times the median on the
# starter catalog. The script exits 1 when the target is missed, after writing the results.
#
# Settings, from the environment (default in brackets):
#   MERGES [200]          timed merges per catalog
#   WARMUP [10]           untimed merges per catalog before the timed ones
#   SCALE_KPIS [10000]    KPIs of the synthetic catalog
#   SCALE_DOMAINS [20]    domains of the synthetic catalog
#   SCALE_VERSIONS [3]    versions per KPI of the synthetic history, so KPIS x (VERSIONS - 1)
#                         history commits after the first
#   SKIP_BUILD [0]        1: use the release binary already built
#   REGISTRY_BIN []       binary to measure; setting it implies SKIP_BUILD=1
#   BUILT_FROM []         commit REGISTRY_BIN was built from, for the results; by default the
#                         work tree's HEAD, marked when its sources have uncommitted changes
#   QUICK [0]             1: MERGES=20, WARMUP=2, 1000 KPIs in 10 domains
#   RESULTS_FILE [BENCHMARKS.md at the repository root; none with QUICK=1]
#   RUN_NOTE []           sentence added to the recorded notes, such as what else ran
#   KEEP_WORKDIR [0]      1: keep the temporary directory with the logs and data
#   WORK_PARENT [$TMPDIR or /tmp]
#                         folder in which the temporary directory, and so both registries'
#                         data, is made; a tmpfs such as /dev/shm takes the disk out of the figures
#
# Both registries run at the same time and take turns merge by merge, so that other load on
# the machine falls on both alike. Each uses SQLite in its data directory and listens on
# 127.0.0.1 on a free port.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DRIVER="$ROOT/bench/merge_latency.py"

QUICK="${QUICK:-0}"
if [ "$QUICK" = 1 ]; then
    quick_merges=20 quick_warmup=2 quick_kpis=1000 quick_domains=10
else
    quick_merges=200 quick_warmup=10 quick_kpis=10000 quick_domains=20
fi
MERGES="${MERGES:-$quick_merges}"
WARMUP="${WARMUP:-$quick_warmup}"
SCALE_KPIS="${SCALE_KPIS:-$quick_kpis}"
SCALE_DOMAINS="${SCALE_DOMAINS:-$quick_domains}"
SCALE_VERSIONS="${SCALE_VERSIONS:-3}"
SKIP_BUILD="${SKIP_BUILD:-0}"
REGISTRY_BIN="${REGISTRY_BIN:-}"
RUN_NOTE="${RUN_NOTE:-}"
KEEP_WORKDIR="${KEEP_WORKDIR:-0}"
WORK_PARENT="${WORK_PARENT:-${TMPDIR:-/tmp}}"
if [ -z "${RESULTS_FILE+set}" ]; then
    if [ "$QUICK" = 1 ]; then RESULTS_FILE=""; else RESULTS_FILE="$ROOT/BENCHMARKS.md"; fi
fi
for name in MERGES SCALE_KPIS SCALE_DOMAINS SCALE_VERSIONS; do
    if ! [[ "${!name}" =~ ^[1-9][0-9]*$ ]]; then
        echo "error: $name must be a positive integer, got '${!name}'" >&2
        exit 2
    fi
done
if ! [[ "$WARMUP" =~ ^[0-9]+$ ]]; then
    echo "error: WARMUP must be a non-negative integer, got '$WARMUP'" >&2
    exit 2
fi
if [ "$SCALE_VERSIONS" -lt 2 ]; then
    echo "error: SCALE_VERSIONS must be 2 or more, so that the synthetic catalog has a history" >&2
    exit 2
fi

if [ -n "$REGISTRY_BIN" ]; then
    SKIP_BUILD=1
else
    REGISTRY_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/ontology-registry"
fi
if [ "$SKIP_BUILD" != 1 ]; then
    echo "building the release binary" >&2
    (cd "$ROOT" && cargo build --release -p ontology-registry)
fi
if [ ! -x "$REGISTRY_BIN" ]; then
    echo "error: no registry binary at $REGISTRY_BIN; build it or set REGISTRY_BIN" >&2
    exit 2
fi

WORKDIR="$(mktemp -d -p "$WORK_PARENT" merge-latency.XXXXXX)"
FILESYSTEM="$(df --output=fstype "$WORKDIR" | tail -n 1)"
SERVER_PIDS=()
cleanup() {
    for pid in "${SERVER_PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    if [ "$KEEP_WORKDIR" = 1 ]; then
        echo "kept $WORKDIR" >&2
    else
        rm -rf "$WORKDIR"
    fi
}
trap cleanup EXIT

ADMIN_PASSWORD="merge latency benchmark admin"
export REGISTRY_ADMIN_PASSWORD="$ADMIN_PASSWORD"
export REGISTRY_JWT_SECRET="merge latency benchmark server key, 32 bytes or more"
export RUST_LOG="${RUST_LOG:-info}"
unset DATABASE_URL REGISTRY_DATA_DIR REGISTRY_CATALOG_DIR REGISTRY_BIND REGISTRY_REQUIRED_APPROVALS

# start_server NAME DATA_DIR CATALOG: starts a server, waits until it listens and sets
# SERVER_URL and START_SECONDS (the time to listen, which includes indexing a new history).
start_server() {
    local name="$1" data_dir="$2" catalog="$3"
    local log="$WORKDIR/$name-server.log" started pid
    started="$(date +%s.%N)"
    "$REGISTRY_BIN" --data-dir "$data_dir" --catalog "$catalog" serve --bind 127.0.0.1:0 >"$log" 2>&1 &
    pid=$!
    SERVER_PIDS+=("$pid")
    SERVER_URL=""
    for _ in $(seq 1 1800); do
        SERVER_URL="$(grep -o 'listening on http://[0-9.:]*' "$log" | head -n 1 | sed 's/listening on //' || true)"
        if [ -n "$SERVER_URL" ]; then
            START_SECONDS="$(awk -v a="$(date +%s.%N)" -v b="$started" 'BEGIN { printf "%.1f", a - b }')"
            echo "$name: listening on $SERVER_URL after $START_SECONDS s" >&2
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "error: the $name server exited during start; its log:" >&2
            cat "$log" >&2
            exit 1
        fi
        sleep 0.2
    done
    echo "error: the $name server did not listen within 6 minutes; see $log" >&2
    exit 1
}

echo "generating $SCALE_KPIS KPIs in $SCALE_DOMAINS domains with $SCALE_VERSIONS versions each" >&2
generate_started="$(date +%s.%N)"
"$REGISTRY_BIN" --data-dir "$WORKDIR/large-data" generate --kpis "$SCALE_KPIS" --domains "$SCALE_DOMAINS" \
    --versions "$SCALE_VERSIONS" "$WORKDIR/large-catalog" >"$WORKDIR/generate.log" 2>&1
generate_seconds="$(awk -v a="$(date +%s.%N)" -v b="$generate_started" 'BEGIN { printf "%.1f", a - b }')"
history_commits="$(git --git-dir "$WORKDIR/large-data/ontology.git" rev-list --count main)"
echo "large catalog: $history_commits commits, generated in ${generate_seconds} s" >&2

start_server starter "$WORKDIR/starter-data" "$ROOT/ontology-repo"
starter_url="$SERVER_URL" starter_start="$START_SECONDS"
start_server large "$WORKDIR/large-data" "$WORKDIR/large-catalog"
large_url="$SERVER_URL" large_start="$START_SECONDS"

echo "$WARMUP warm-up and $MERGES timed merges on each registry, taking turns" >&2
python3 "$DRIVER" --registry "starter=$starter_url" --registry "large=$large_url" \
    --admin-password "$ADMIN_PASSWORD" --merges "$MERGES" --warmup "$WARMUP" >"$WORKDIR/latencies.json"

COMMIT="${BUILT_FROM:-}"
if [ -z "$COMMIT" ]; then
    COMMIT="$(git -C "$ROOT" rev-parse --short HEAD)"
    if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no -- crates migrations Cargo.toml Cargo.lock)" ]; then
        COMMIT="$COMMIT with uncommitted changes to the sources"
    fi
fi
CPU="$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)"
MACHINE="$(nproc) CPUs (${CPU:-unknown model}), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM, Linux $(uname -r)"
DATE="$(date -u +%Y-%m-%d)"
COMMAND="bench/merge-latency.sh"
[ "$QUICK" = 1 ] && COMMAND="QUICK=1 $COMMAND"

python3 - "$WORKDIR/latencies.json" "$RESULTS_FILE" <<EOF
import json, re, sys
measured = json.load(open(sys.argv[1]))
starter, large = measured["starter"], measured["large"]
starter["start_seconds"], large["start_seconds"] = $starter_start, $large_start
results_file = sys.argv[2]
begin = "<!-- BEGIN merge-latency.sh: this section is rewritten by bench/merge-latency.sh -->"
end = "<!-- END merge-latency.sh -->"
ratio = large["median_ms"] / starter["median_ms"]
verdict = "met" if ratio <= 1.5 else "missed"

def row(name, s):
    return (f"| {name} | {s['kpis']} | {s['merges']} | {s['median_ms']:.1f} | {s['p90_ms']:.1f} | "
            f"{s['mean_ms']:.1f} | {s['min_ms']:.1f} | {s['max_ms']:.1f} | {s['start_seconds']:.1f} |")

table = "\n".join([
    "| catalog | active KPIs | timed merges | median ms | p90 ms | mean ms | min ms | max ms | server start s |",
    "|---|---|---|---|---|---|---|---|---|",
    row("starter (ontology-repo, 1 commit)", starter),
    row("synthetic, $SCALE_KPIS KPIs in $SCALE_DOMAINS domains, $history_commits commits", large),
])
print(table)
print(f"median ratio large / starter: {ratio:.3f} (target at most 1.5: {verdict})")

if results_file:
    note = "$RUN_NOTE".strip()
    section = "\n".join([
        begin,
        "## Merge latency",
        "",
        f"Recorded by \`$COMMAND\` on $DATE at commit $COMMIT.",
        "",
        "Machine: $MACHINE.",
        "",
        "Each merge follows a proposal of a summary change (a patch) to the next KPI in catalog order,",
        "approved by a second account; only the \`POST /api/proposals/{id}/merge\` request is timed,",
        "from the client over one keep-alive connection per registry on loopback, after $WARMUP untimed",
        "merges. Both registries run at once and take turns merge by merge, so load from other",
        "processes falls on both alike. Each serves SQLite in its data directory with the release",
        "binary; the data directories are on $FILESYSTEM. The synthetic catalog comes from",
        "\`ontology-registry generate --kpis $SCALE_KPIS --domains $SCALE_DOMAINS --versions $SCALE_VERSIONS\`",
        f"(generated in {float('$generate_seconds'):.0f} s); its server start includes indexing that whole history.",
        "",
        table,
        "",
        f"Median ratio, synthetic over starter: {ratio:.3f}. Target: at most 1.5, so the target is {verdict}.",
    ])
    if note:
        section += "\n\n" + note
    section += "\n" + end + "\n"
    try:
        text = open(results_file).read()
    except FileNotFoundError:
        text = "# Benchmarks\n"
    marked = re.compile(re.escape(begin) + r".*?" + re.escape(end) + r"\n?", re.S)
    # A section without markers ends at the next heading or at another script's marker.
    unmarked = re.compile(r"^## Merge latency\n.*?(?=^## |^<!-- |\Z)", re.S | re.M)
    if marked.search(text):
        text = marked.sub(lambda _: section, text, count=1)
    elif unmarked.search(text):
        text = unmarked.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    open(results_file, "w").write(text)
    print(f"wrote the merge latency section of {results_file}")
sys.exit(0 if verdict == "met" else 1)
EOF
