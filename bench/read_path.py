#!/usr/bin/env python3
"""Helpers of bench/read-path.sh that are awkward in bash.

Subcommands:
  free-port            print a free TCP port on 127.0.0.1
  pick-kpi INDEX_JSON  print the URL path and version of a KPI in the middle of an index.json
  run-wrk              run wrk; print requests/s, p50 and p99 (microseconds), error counts
                       and the CPU share that other processes took meanwhile
  time-starts          start a server several times and time each start to its "listening" line
  report               print the results table and write the BENCHMARKS.md section

Only the standard library is used, so the script runs on a bare Debian python3.
"""

import argparse
import json
import os
import re
import resource
import select
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

SECTION_BEGIN = "<!-- BEGIN read-path.sh: this section is rewritten by bench/read-path.sh -->"
SECTION_END = "<!-- END read-path.sh -->"

# wrk prints latencies with a unit suffix.
LATENCY_UNITS_US = {"us": 1.0, "ms": 1000.0, "s": 1_000_000.0}


def free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pick_kpi(index_path: str) -> tuple[str, str]:
    """Return the `url` and `version` of the middle KPI of the middle domain of an index.json."""
    index = json.loads(Path(index_path).read_text())
    domains = [domain for domain in index["domains"] if domain["kpis"]]
    if not domains:
        raise SystemExit(f"{index_path}: the index lists no KPI")
    domain = domains[len(domains) // 2]
    kpi = domain["kpis"][len(domain["kpis"]) // 2]
    return kpi["url"], kpi["version"]


def parse_latency_us(text: str) -> float:
    match = re.fullmatch(r"([0-9.]+)(us|ms|s)", text)
    if not match:
        raise ValueError(f"unrecognised wrk latency `{text}`")
    return float(match.group(1)) * LATENCY_UNITS_US[match.group(2)]


def wrk_summary(path: str) -> dict:
    """Parse the output of `wrk --latency`."""
    text = Path(path).read_text()
    rps = re.search(r"^Requests/sec:\s+([0-9.]+)", text, re.MULTILINE)
    p50 = re.search(r"^\s+50(?:\.000)?%\s+(\S+)", text, re.MULTILINE)
    p99 = re.search(r"^\s+99(?:\.000)?%\s+(\S+)", text, re.MULTILINE)
    requests = re.search(r"^\s+(\d+) requests in ", text, re.MULTILINE)
    if not (rps and p50 and p99 and requests):
        raise SystemExit(f"{path}: no request count, requests/s or latency distribution in the wrk output:\n{text}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    return {
        "rps": float(rps.group(1)),
        "requests": int(requests.group(1)),
        "p50_us": parse_latency_us(p50.group(1)),
        "p99_us": parse_latency_us(p99.group(1)),
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": sum(int(n) for n in socket_errors.groups()) if socket_errors else 0,
    }


def read_rss_kib(pid: int) -> tuple[int, int]:
    """Return VmRSS and VmHWM (peak RSS) of a process, in KiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields["VmRSS"], fields["VmHWM"]


def wait_for_line(process: subprocess.Popen, marker: bytes, timeout: float, log) -> bool:
    """Copy the process's stderr to `log` until a line contains `marker`; False on timeout or exit."""
    deadline = time.monotonic() + timeout
    fd = process.stderr.fileno()
    pending = b""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            return False
        chunk = os.read(fd, 65536)
        if not chunk:
            return False
        log.write(chunk)
        pending += chunk
        if marker in pending:
            return True
        pending = pending[-len(marker) :]


def time_starts(runs: int, timeout: float, log_dir: str, command: list[str]) -> None:
    """Start `command` `runs` times, each until it logs `listening on`, then stop it with SIGTERM.

    Prints one line per start: seconds from spawn to the line, and VmRSS in KiB right after it.
    """
    # SIGTERM from bench/read-path.sh's cleanup must stop the server this process started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    for run in range(1, runs + 1):
        log_path = Path(log_dir) / f"start-{run}.log"
        with open(log_path, "wb") as log:
            started = time.monotonic()
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.PIPE)
            try:
                if not wait_for_line(process, b"listening on http://", timeout, log):
                    raise SystemExit(f"start {run}: no `listening on` line within {timeout:.0f} s; see {log_path}")
                elapsed = time.monotonic() - started
                rss_kib, _ = read_rss_kib(process.pid)
                print(f"{elapsed:.4f} {rss_kib}", flush=True)
            finally:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
                    try:
                        # Reading to the end also keeps a log line from blocking the server on a full pipe.
                        log.write(process.communicate(timeout=30)[1])
                    except subprocess.TimeoutExpired:
                        process.kill()
                        process.wait()


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def machine_busy_ticks() -> int:
    """User, nice, system, IRQ and softirq ticks of all CPUs since boot.

    Tick-based accounting, the kernel's default without CONFIG_IRQ_TIME_ACCOUNTING, charges
    an interrupt tick to the interrupted task as well, so the servers' own ticks include the
    loopback traffic's softirq work and the machine total must include it too.
    """
    fields = Path("/proc/stat").read_text().splitlines()[0].split()
    user, nice, system, _idle, _iowait, irq, softirq = (int(value) for value in fields[1:8])
    return user + nice + system + irq + softirq


def process_tree_ticks(root_pids: list[int]) -> int:
    """User and system ticks of the given processes and their children (nginx's workers)."""
    parents = {}
    ticks = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may contain spaces and brackets; the fields after it do not.
        fields = stat[stat.rindex(")") + 2 :].split()
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        ticks[pid] = int(fields[11]) + int(fields[12])
    selected = set(root_pids)
    selected |= {pid for pid, parent in parents.items() if parent in selected}
    return sum(ticks.get(pid, 0) for pid in selected)


def run_wrk(wrk_args: list[str], output: str, server_pids: list[int]) -> None:
    """Run wrk, write its output, and print its summary with two CPU figures.

    The server's CPU time per request comes from its processes' user and system ticks. The
    CPU share of other processes is an estimate: machine-wide busy time during the run, less
    the CPU time of wrk and of the server, as a percentage of all cores over the wall time.
    NOTE: on a kernel with CONFIG_IRQ_TIME_ACCOUNTING the servers' softirq work counts as
    other processes' CPU, which overstates the share.
    """
    cores = os.cpu_count() or 1
    busy_before = machine_busy_ticks()
    servers_before = process_tree_ticks(server_pids)
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    with open(output, "wb") as log:
        status = subprocess.run(["wrk", *wrk_args], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT).returncode
    wall = time.monotonic() - started
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    servers_after = process_tree_ticks(server_pids)
    busy_after = machine_busy_ticks()
    if status != 0:
        raise SystemExit(f"wrk exited with status {status}; output in {output}")

    wrk_seconds = (children_after.ru_utime - children_before.ru_utime) + (children_after.ru_stime - children_before.ru_stime)
    busy_seconds = (busy_after - busy_before) / CLOCK_TICKS
    server_seconds = (servers_after - servers_before) / CLOCK_TICKS
    other_seconds = max(0.0, busy_seconds - server_seconds - wrk_seconds)
    other_percent = 100.0 * other_seconds / (cores * wall)

    result = wrk_summary(output)
    server_us_per_request = 1e6 * server_seconds / max(result["requests"], 1)
    print(
        f"{result['rps']:.2f}\t{result['p50_us']:.1f}\t{result['p99_us']:.1f}\t{result['non_2xx']}"
        f"\t{result['socket_errors']}\t{server_us_per_request:.2f}\t{other_percent:.1f}"
    )


# Minimum registry/nginx throughput ratio per case.
THROUGHPUT_TARGETS = {
    "starter-pinned": 1.0,
    "starter-unpinned": 0.8,
    "starter-index": 0.8,
    "scale-pinned": 1.0,
    "scale-index": 0.8,
}
# Maximum registry/nginx p99 latency ratio per case.
P99_TARGETS = {"starter-pinned": 2.0, "scale-pinned": 2.0}
START_TARGET_S = 2.0
RSS_TARGET_MIB = 300.0
REINDEX_TARGET_S = 60.0

CASE_ORDER = ["starter-pinned", "starter-unpinned", "starter-index", "scale-pinned", "scale-index"]


def read_facts(path: str) -> dict:
    facts = {}
    for line in Path(path).read_text().splitlines():
        if "=" in line:
            key, _, value = line.partition("=")
            facts[key] = value
    return facts


def read_rounds(path: str) -> dict:
    """Group the rounds of results.tsv by case and server."""
    rounds: dict = {}
    for line in Path(path).read_text().splitlines():
        fields = line.split("\t")
        case, server, _round, rps, p50, p99, non_2xx, socket_errors, cpu_us, other_cpu, compilers = fields
        entry = rounds.setdefault(case, {}).setdefault(server, [])
        entry.append(
            {
                "rps": float(rps),
                "p50_us": float(p50),
                "p99_us": float(p99),
                "non_2xx": int(non_2xx),
                "socket_errors": int(socket_errors),
                "cpu_us": float(cpu_us),
                "other_cpu": float(other_cpu),
                "compilers": "" if compilers == "-" else compilers,
            }
        )
    return rounds


# A round is marked disturbed when other processes took more than this share of the CPUs.
DISTURBED_OTHER_CPU_PERCENT = 5.0


def is_disturbed(round_result: dict) -> bool:
    return bool(round_result["compilers"]) or round_result["other_cpu"] > DISTURBED_OTHER_CPU_PERCENT


def verdict(met: bool | None) -> str:
    return {True: "yes", False: "NO", None: "-"}[met]


def format_ms(us: float) -> str:
    return f"{us / 1000:.2f} ms"


def build_rows(facts: dict, rounds: dict) -> list[dict]:
    rows = []
    for case in CASE_ORDER:
        if case not in rounds:
            continue
        registry = rounds[case]["registry"]
        nginx = rounds[case]["nginx"]
        registry_rps = statistics.median(r["rps"] for r in registry)
        nginx_rps = statistics.median(r["rps"] for r in nginx)
        registry_p99 = statistics.median(r["p99_us"] for r in registry)
        nginx_p99 = statistics.median(r["p99_us"] for r in nginx)
        registry_cpu = statistics.median(r["cpu_us"] for r in registry)
        nginx_cpu = statistics.median(r["cpu_us"] for r in nginx)
        rps_ratio = registry_rps / nginx_rps
        p99_ratio = registry_p99 / nginx_p99
        rps_target = THROUGHPUT_TARGETS.get(case)
        p99_target = P99_TARGETS.get(case)
        rows.append(
            {
                "case": case,
                "label": facts.get(f"label.{case}", case),
                "path": facts.get(f"path.{case}", ""),
                "bytes": facts.get(f"bytes.{case}", ""),
                "registry_rps": registry_rps,
                "nginx_rps": nginx_rps,
                "rps_ratio": rps_ratio,
                "rps_target": rps_target,
                "rps_met": None if rps_target is None else rps_ratio >= rps_target,
                "registry_p99": registry_p99,
                "nginx_p99": nginx_p99,
                "p99_ratio": p99_ratio,
                "p99_target": p99_target,
                "p99_met": None if p99_target is None else p99_ratio <= p99_target,
                "registry_cpu": registry_cpu,
                "nginx_cpu": nginx_cpu,
                "registry_rounds": [r["rps"] for r in registry],
                "nginx_rounds": [r["rps"] for r in nginx],
                "errors": sum(r["socket_errors"] for r in registry + nginx),
                "busy_rounds": sum(1 for r in registry + nginx if is_disturbed(r)),
                "max_other_cpu": max(r["other_cpu"] for r in registry + nginx),
                "round_count": len(registry) + len(nginx),
            }
        )
    return rows


def build_scalars(facts: dict) -> list[tuple[str, str, str, bool | None]]:
    """Start time, memory and reindex rows: (measure, value, target, met)."""
    scalars = []
    kpis = facts.get("scale.kpis", "?")
    if "start.median_s" in facts:
        start = float(facts["start.median_s"])
        runs = facts.get("start.runs", "?")
        scalars.append(
            (
                f"Start to `listening`, {kpis} KPIs (median of {runs})",
                f"{start:.3f} s",
                f"< {START_TARGET_S:g} s",
                start < START_TARGET_S,
            )
        )
    if "rss.after_start_kib" in facts:
        after_start = int(facts["rss.after_start_kib"]) / 1024
        after_wrk = int(facts["rss.after_wrk_kib"]) / 1024
        peak = int(facts["rss.peak_kib"]) / 1024
        scalars.append((f"RSS after start, {kpis} KPIs", f"{after_start:.1f} MiB", f"< {RSS_TARGET_MIB:g} MiB", after_start < RSS_TARGET_MIB))
        scalars.append((f"RSS after the wrk rounds, {kpis} KPIs", f"{after_wrk:.1f} MiB", f"< {RSS_TARGET_MIB:g} MiB", after_wrk < RSS_TARGET_MIB))
        scalars.append((f"Peak RSS (VmHWM), {kpis} KPIs", f"{peak:.1f} MiB", "-", None))
    versions = facts.get("history.versions", "?")
    for backend in ("sqlite", "postgres"):
        key = f"reindex.{backend}_s"
        if key in facts:
            seconds = float(facts[key])
            name = "SQLite" if backend == "sqlite" else "PostgreSQL"
            scalars.append(
                (
                    f"Reindex {kpis} KPIs x {versions} versions, {name}",
                    f"{seconds:.1f} s",
                    f"< {REINDEX_TARGET_S:g} s",
                    seconds < REINDEX_TARGET_S,
                )
            )
        elif f"reindex.{backend}_timeout" in facts:
            name = "SQLite" if backend == "sqlite" else "PostgreSQL"
            timeout = facts[f"reindex.{backend}_timeout"]
            scalars.append(
                (
                    f"Reindex {kpis} KPIs x {versions} versions, {name}",
                    f"> {timeout} s (stopped unfinished)",
                    f"< {REINDEX_TARGET_S:g} s",
                    False,
                )
            )
        elif f"reindex.{backend}_skipped" in facts:
            name = "SQLite" if backend == "sqlite" else "PostgreSQL"
            scalars.append((f"Reindex, {name}", "not run: " + facts[f"reindex.{backend}_skipped"], f"< {REINDEX_TARGET_S:g} s", None))
    return scalars


def ratio_target(target: float | None, at_least: bool) -> str:
    if target is None:
        return "-"
    return f"{'>=' if at_least else '<='} {target:g}x"


def print_table(facts: dict, rows: list[dict], scalars: list) -> None:
    header = (
        f"{'case':<28} {'registry rps':>12} {'nginx rps':>10} {'ratio':>6} {'target':>7} {'met':>3}"
        f"  {'registry p99':>12} {'nginx p99':>9} {'ratio':>6} {'target':>7} {'met':>3}"
        f"  {'CPU us/req':>13}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['label']:<28} {row['registry_rps']:>12.0f} {row['nginx_rps']:>10.0f} {row['rps_ratio']:>5.2f}x"
            f" {ratio_target(row['rps_target'], True):>7} {verdict(row['rps_met']):>3}"
            f"  {format_ms(row['registry_p99']):>12} {format_ms(row['nginx_p99']):>9} {row['p99_ratio']:>5.2f}x"
            f" {ratio_target(row['p99_target'], False):>7} {verdict(row['p99_met']):>3}"
            f"  {row['registry_cpu']:>6.1f}/{row['nginx_cpu']:<6.1f}"
        )
    print("(CPU us/req: the server's CPU time per request, registry/nginx)")
    if scalars:
        print()
        for measure, value, target, met in scalars:
            print(f"{measure:<58} {value:>14} {target:>10} {verdict(met):>4}")
    for note in disturbance_notes(facts, rows):
        print(f"NOTE: {note}")


def disturbance_notes(facts: dict, rows: list[dict]) -> list[str]:
    notes = []
    busy = sum(row["busy_rounds"] for row in rows)
    total = sum(row["round_count"] for row in rows)
    if busy:
        worst = max(row["max_other_cpu"] for row in rows)
        notes.append(
            f"{busy} of {total} wrk rounds were disturbed: a compiler was running, or other processes took more"
            f" than {DISTURBED_OTHER_CPU_PERCENT:g}% of the CPUs (at most {worst:.0f}% in one round)"
        )
    if facts.get("busy.reindex"):
        notes.append(f"a compiler was running during the reindex runs ({facts['busy.reindex']})")
    if facts.get("busy.start"):
        notes.append(f"a compiler was running during the start measurement ({facts['busy.start']})")
    errors = sum(row["errors"] for row in rows)
    if errors:
        notes.append(f"wrk reported {errors} socket errors (connect, read, write or timeout) over all rounds")
    if facts.get("run.note"):
        notes.append(facts["run.note"])
    return notes


def markdown_header(facts: dict) -> list[str]:
    lines = [SECTION_BEGIN, "## Read path: registry vs nginx", ""]
    if facts.get("run.quick") == "1":
        lines += ["**Quick smoke run (`QUICK=1`): too short and too small to be a measurement.**", ""]

    lines += [
        "`bench/read-path.sh` serves the same response bytes from the registry and, as static",
        "files, from nginx, and loads both on loopback with `wrk`, alternating registry and",
        "nginx round by round. Each figure is the median over the rounds. A ratio is",
        "registry/nginx: a throughput ratio above 1 means the registry served more requests",
        "per second, and a p99 ratio above 1 means its 99th-percentile latency was higher.",
        "wrk and both servers share the machine's cores. The last column is the server's own",
        "CPU time (user and system, all its processes) divided by the requests it served.",
        "",
    ]

    dirty = " (working tree had uncommitted changes)" if facts.get("git.dirty") == "1" else ""
    machine = f"{facts['machine.cpu']}, {facts['machine.cores']} cores, {facts['machine.ram']} RAM"
    software = f"{facts['version.nginx']}, {facts['version.wrk']}, {facts.get('version.postgres', 'PostgreSQL not used')}"
    wrk = f"wrk -t{facts['wrk.threads']} -c{facts['wrk.connections']} -d{facts['wrk.seconds']}s --latency"
    lines += [
        f"- Date (UTC): {facts['run.date']}",
        f"- Commit: `{facts['git.commit']}`{dirty}; binary built {facts.get('binary.built', '?')}"
        f"{' (not rebuilt by this run)' if facts.get('binary.prebuilt') == '1' else ''}",
        f"- Machine: {machine}, Linux {facts['machine.kernel']}",
        f"- Software: {software}",
        f"- Command: `{facts['run.command']}`",
        f"- Load: `{wrk}`, {facts['wrk.rounds']} rounds per server and case after a {facts['wrk.warmup']} s"
        " warm-up. The registry runs with `RUST_LOG=warn` on SQLite, nginx with the configuration that the"
        " script writes (`worker_processes auto`, `sendfile on`, `access_log off`, keep-alive).",
        f"- Load average before the run: {facts.get('run.loadavg', '?')}",
    ]
    return lines


def markdown_cases(rows: list[dict]) -> list[str]:
    lines = [
        "",
        "| Case | Response | Registry req/s | nginx req/s | Ratio | Target | Met"
        " | Registry p99 | nginx p99 | Ratio | Target | Met | CPU µs/request, registry / nginx |",
        "| --- | --- | ---: | ---: | ---: | --- | --- | ---: | ---: | ---: | --- | --- | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {row['label']} | `{row['path']}`, {row['bytes']} B | {row['registry_rps']:.0f} | {row['nginx_rps']:.0f}"
            f" | {row['rps_ratio']:.2f}x | {ratio_target(row['rps_target'], True)} | {verdict(row['rps_met'])}"
            f" | {format_ms(row['registry_p99'])} | {format_ms(row['nginx_p99'])} | {row['p99_ratio']:.2f}x"
            f" | {ratio_target(row['p99_target'], False)} | {verdict(row['p99_met'])}"
            f" | {row['registry_cpu']:.1f} / {row['nginx_cpu']:.1f} |"
        )
    return lines


def markdown_scalars(scalars: list) -> list[str]:
    if not scalars:
        return []
    lines = ["", "| Measure | Value | Target | Met |", "| --- | ---: | --- | --- |"]
    for measure, value, target, met in scalars:
        lines.append(f"| {measure} | {value} | {target} | {verdict(met)} |")
    return lines


def markdown_rounds(rows: list[dict]) -> list[str]:
    lines = ["", "Requests/s of every round, in run order:", ""]
    for row in rows:
        registry = ", ".join(f"{value:.0f}" for value in row["registry_rounds"])
        nginx = ", ".join(f"{value:.0f}" for value in row["nginx_rounds"])
        lines.append(f"- {row['label']}: registry {registry}; nginx {nginx}")
    return lines


def markdown_section(facts: dict, rows: list[dict], scalars: list) -> str:
    lines = markdown_header(facts)
    lines += markdown_cases(rows)
    lines += markdown_scalars(scalars)

    notes = disturbance_notes(facts, rows)
    lines.append("")
    if notes:
        lines += [f"- Note: {note}" for note in notes]
    else:
        worst = max((row["max_other_cpu"] for row in rows), default=0.0)
        lines.append(
            f"- Quiet run: no compiler ran during the measurements, and other processes took at most"
            f" {worst:.0f}% of the CPUs in any wrk round."
        )

    lines += markdown_rounds(rows)
    lines += ["", SECTION_END]
    return "\n".join(lines) + "\n"


def write_section(path: Path, section: str) -> None:
    """Replace the section between the markers, or append it; other sections stay as they are."""
    if not path.exists():
        path.write_text("# Benchmarks\n\n" + section)
        return
    text = path.read_text()
    begin = text.find(SECTION_BEGIN)
    end = text.find(SECTION_END)
    if begin >= 0 and end > begin:
        rest = text[end + len(SECTION_END) :].lstrip("\n")
        text = text[:begin] + section + ("\n" + rest if rest else "")
    elif begin >= 0 or end >= 0:
        raise SystemExit(f"{path}: only one of the read-path.sh section markers is present; restore or remove it")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def report(results: str, facts_path: str, output: str | None) -> None:
    facts = read_facts(facts_path)
    rounds = read_rounds(results)
    rows = build_rows(facts, rounds)
    scalars = build_scalars(facts)
    print_table(facts, rows, scalars)
    if output:
        write_section(Path(output), markdown_section(facts, rows, scalars))
        print(f"wrote the read-path section of {output}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("free-port")
    pick = commands.add_parser("pick-kpi")
    pick.add_argument("index_json")
    wrk = commands.add_parser("run-wrk")
    wrk.add_argument("--output", required=True, help="file for wrk's output")
    wrk.add_argument("--server-pid", type=int, action="append", default=[], help="server process whose CPU time (with its children's) is measured; repeatable")
    wrk.add_argument("wrk_args", nargs=argparse.REMAINDER)
    starts = commands.add_parser("time-starts")
    starts.add_argument("--runs", type=int, required=True)
    starts.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for each start")
    starts.add_argument("--log-dir", required=True)
    starts.add_argument("server_command", nargs=argparse.REMAINDER)
    reporting = commands.add_parser("report")
    reporting.add_argument("--results", required=True, help="results.tsv written by read-path.sh")
    reporting.add_argument("--facts", required=True, help="key=value file written by read-path.sh")
    reporting.add_argument("--output", help="Markdown file whose read-path section is rewritten")
    args = parser.parse_args()

    if args.command == "free-port":
        print(free_port())
    elif args.command == "pick-kpi":
        url, version = pick_kpi(args.index_json)
        print(url, version)
    elif args.command == "run-wrk":
        wrk_args = args.wrk_args[1:] if args.wrk_args[:1] == ["--"] else args.wrk_args
        run_wrk(wrk_args, args.output, args.server_pid)
    elif args.command == "time-starts":
        command = args.server_command[1:] if args.server_command[:1] == ["--"] else args.server_command
        if not command:
            parser.error("time-starts needs the server command after --")
        time_starts(args.runs, args.timeout, args.log_dir, command)
    elif args.command == "report":
        report(args.results, args.facts, args.output)


if __name__ == "__main__":
    main()
